package tokens_test

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

var words = strings.Fields(`the of and to a in is you that it he was for on are as with his they at be
	this have from or one had by word but not what all were we when your can said there use an each
	which she do how their if will up other about out many then them these so some her would make like
	him into time has look two more write go see number no way could people my than first water been
	call who oil its now find long down day did get come made may part customer order invoice refund
	shipping address account password support ticket product warranty delivery payment receipt`)

// Vocabularies of text that is not ASCII: French, with its accents and apostrophes, and
// Korean, whose words are separated by spaces.
var (
	frenchWords = strings.Fields(`le la les des une est pour dans avec sans été élevé très déjà où
		traitement lots requête fichier sortie entrée délai quota déploiement modèle réponse
		numéro client commande facture réduction adresse à ça même être première deuxième`)
	koreanWords = strings.Fields(`일괄 처리 요청 파일 출력 입력 할당량 배포 모델 응답 시간 대상 작업 그룹
		비동기 효율적으로 설계되었습니다 대규모 대용량 사용 지원 고객 주문 결제 배송 주소 번호`)
)

// prose returns about n bytes of English-like text drawn from seed.
func prose(seed uint64, n int) string { return proseOf(words, seed, n) }

// proseOf returns about n bytes of text of the words of vocabulary drawn from seed.
func proseOf(vocabulary []string, seed uint64, n int) string {
	rng := rand.New(rand.NewPCG(seed, 1))
	var sb strings.Builder
	for sb.Len() < n {
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(vocabulary[rng.IntN(len(vocabulary))])
		if rng.IntN(12) == 0 {
			sb.WriteString(".")
		}
	}
	return sb.String()
}

// chatLine is a chat body whose user message starts with a number the benchmark changes
// on every request, so that message is never in the cache; with uniqueSystem the system
// prompt starts with one too.
type chatLine struct {
	parts [3]string // body = parts[0] n parts[1] n parts[2], or parts[0] parts[1] n parts[2]
	uniq  bool
}

func newChatLine(tb testing.TB, uniqueSystem bool) chatLine {
	tb.Helper()
	const mark = "\x00"
	system := prose(1, 1500)
	if uniqueSystem {
		system = mark + " " + system
	}
	body := js(tb, obj{"model": "gpt-4o-mini", "max_tokens": 256, "messages": []obj{
		{"role": "system", "content": system},
		{"role": "user", "content": "Ticket " + mark + ": " + prose(2, 1000)},
	}})
	body = strings.ReplaceAll(body, `\u0000`, mark)
	p := strings.Split(body, mark)
	if len(p) == 2 {
		p = []string{p[0], "", p[1]}
	}
	return chatLine{parts: [3]string{p[0], p[1], p[2]}, uniq: uniqueSystem}
}

// body appends the body for request i to dst.
func (l chatLine) body(dst []byte, i int) []byte {
	dst = append(dst, l.parts[0]...)
	if l.uniq {
		dst = strconv.AppendInt(dst, int64(i), 10)
	}
	dst = append(dst, l.parts[1]...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	return append(dst, l.parts[2]...)
}

// BenchmarkRequest counts chat bodies of a 1.5 KB system prompt and a 1 KB user message
// that is new on every request; the system prompt is new every time too, or repeated
// as in a typical batch file.
func BenchmarkRequest(b *testing.B) {
	for _, bc := range []struct {
		name         string
		uniqueSystem bool
		parallel     bool
	}{
		{"unique", true, false},
		{"repeated-system", false, false},
		{"unique-parallel", true, true},
		{"repeated-system-parallel", false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := MustNew(b, "o200k_base")
			line := newChatLine(b, bc.uniqueSystem)
			b.SetBytes(int64(len(line.body(nil, 1_000_000))))
			b.ReportAllocs()
			var total, seq atomic.Int64
			count := func(buf []byte) []byte {
				buf = line.body(buf[:0], int(seq.Add(1)))
				n, err := c.Request(chat, buf)
				if err != nil {
					b.Error(err)
				}
				total.Add(int64(n))
				return buf
			}
			if bc.parallel {
				b.RunParallel(func(pb *testing.PB) {
					var buf []byte
					for pb.Next() {
						buf = count(buf)
					}
				})
			} else {
				var buf []byte
				for b.Loop() {
					buf = count(buf)
				}
			}
			b.ReportMetric(float64(total.Load())/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkText counts 1 KB windows of a 1 MB ASCII text at scattered offsets, so every
// string is new but its words recur, as in a batch file's lines: "english", "french"
// and "korean" draw words from a small vocabulary, "random-words" makes up every word,
// the worst case for caching pieces.
func BenchmarkText(b *testing.B) {
	for _, bc := range []struct {
		name string
		text string
	}{
		{"english", prose(3, 1<<20)},
		{"french", proseOf(frenchWords, 5, 1<<20)},
		{"korean", proseOf(koreanWords, 6, 1<<20)},
		{"random-words", randomWords(4, 1<<20)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const size = 1024
			c := MustNew(b, "o200k_base")
			b.SetBytes(size)
			b.ReportAllocs()
			total, i := 0, 0
			for b.Loop() {
				off := i * 7919 % (len(bc.text) - size)
				total += c.Text(bc.text[off : off+size])
				i++
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// randomWords returns about n bytes of made-up lowercase words, with punctuation.
func randomWords(seed uint64, n int) string {
	rng := rand.New(rand.NewPCG(seed, 2))
	var sb strings.Builder
	for sb.Len() < n {
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		for range 3 + rng.IntN(8) {
			sb.WriteByte(byte('a' + rng.IntN(26)))
		}
		if rng.IntN(12) == 0 {
			sb.WriteString(".")
		}
	}
	return sb.String()
}

// BenchmarkRequestCached counts the same body again and again: the cost of walking the
// JSON and looking up its strings, with no tokenizing at all.
func BenchmarkRequestCached(b *testing.B) {
	c := MustNew(b, "o200k_base")
	body := []byte(cookbookTools)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Request(chat, body); err != nil {
			b.Fatal(err)
		}
	}
}
