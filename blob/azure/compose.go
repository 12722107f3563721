package azure

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/appendblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/sluice-batch/sluice"
)

// source is what Compose knows of one part's object.
type source struct {
	key  string
	size int64
	// etag pins a block blob's bytes while they are copied; append blobs only grow,
	// so their ranges cannot change and they are read without it.
	etag   *azcore.ETag
	append bool
	sealed bool
	etagAt azcore.ETag // the ETag of the properties read, for sealing
}

// rng is a range of a source, or the slice of one in a block.
type rng struct {
	name    string
	off, n  int64
	blockAt int64 // where the bytes go in their block
}

// block is one block of the object Compose commits: either one range the service
// copies, or ranges packed together and staged through this process.
type block struct {
	fromURL bool
	size    int64
	slices  []rng
}

// errNoServerCopy says the service cannot copy a block from a URL.
var errNoServerCopy = errors.New("the service cannot stage blocks from a URL")

// Compose implements sluice.Bucket; see the package comment for how. The object is one
// commit of a block list, so nothing is visible under key until every block is in.
func (b *Bucket) Compose(ctx context.Context, key string, parts []sluice.Part) (int64, error) {
	name, err := b.name(key)
	if err != nil {
		return 0, err
	}
	// Every request of a compose carries a block or less, downloads included.
	ctx = b.withTry(ctx)
	sources, err := b.sources(ctx, parts)
	if err != nil {
		return 0, err
	}
	if len(parts) == 1 {
		if err := b.sealWhole(ctx, parts[0], sources[b.prefix+parts[0].Key]); err != nil {
			return 0, err
		}
	}
	ranges, total := coalesce(b.prefix, parts)
	copyMin := b.serverCopyMin
	if b.noServerCopy.Load() || !(b.canSign || b.hasSAS) {
		copyMin = -1
	}
	for {
		blocks, err := plan(ranges, int64(b.blockSize), copyMin, maxCopyBytes, b.maxBlocks)
		if err != nil {
			return 0, fmt.Errorf("compose %s: %w", key, err)
		}
		err = b.compose(ctx, name, blocks, sources)
		if errors.Is(err, errNoServerCopy) && copyMin >= 0 {
			if !b.noServerCopy.Swap(true) {
				b.log.InfoContext(ctx, "the blob service cannot copy ranges between blobs (Put Block From URL); composing through this process", "err", err)
			}
			copyMin = -1
			continue
		}
		if err != nil {
			return 0, translate("compose", key, err)
		}
		return total, nil
	}
}

// sources reads the properties of every part's object and checks each part's range.
func (b *Bucket) sources(ctx context.Context, parts []sluice.Part) (map[string]*source, error) {
	sources := make(map[string]*source)
	for _, p := range parts {
		name, err := b.name(p.Key)
		if err != nil {
			return nil, err
		}
		src := sources[name]
		if src == nil {
			props, err := b.cont.NewBlobClient(name).GetProperties(ctx, nil)
			if err != nil {
				return nil, translate("compose from", p.Key, err)
			}
			src = &source{key: p.Key, size: deref(props.ContentLength), etagAt: deref(props.ETag)}
			if src.append = deref(props.BlobType) == blob.BlobTypeAppendBlob; !src.append {
				src.etag = props.ETag
			}
			src.sealed = deref(props.IsSealed)
			sources[name] = src
		}
		if p.Offset < 0 || p.Length < 0 || p.Offset+p.Length > src.size {
			return nil, sluice.Errorf(sluice.KindInvalid, "The range %d+%d reaches past the %d bytes of %s.", p.Offset, p.Length, src.size, p.Key)
		}
	}
	return sources, nil
}

// sealWhole seals an append blob that p covers whole, so that it no longer grows, as
// the folder bucket's linked files do not. The object composed is a copy and would not
// change anyway; the seal keeps the two buckets' Append refusing the same calls. It is
// conditional on the blob being as it was read: one that grew since stays open.
func (b *Bucket) sealWhole(ctx context.Context, p sluice.Part, src *source) error {
	if !src.append || src.sealed || p.Offset != 0 || p.Length != src.size {
		return nil
	}
	name := b.prefix + p.Key
	_, err := b.cont.NewAppendBlobClient(name).Seal(ctx, &appendblob.SealOptions{
		AccessConditions:               &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &src.etagAt}},
		AppendPositionAccessConditions: &appendblob.AppendPositionAccessConditions{AppendPosition: &src.size},
	})
	if s := status(err); s == http.StatusPreconditionFailed || s == http.StatusConflict {
		return nil
	}
	if err != nil {
		return fmt.Errorf("seal %s: %w", p.Key, err)
	}
	return nil
}

// coalesce returns the parts as blob ranges, without empty ones, adjacent ranges of one
// object joined, and their total size.
func coalesce(prefix string, parts []sluice.Part) ([]rng, int64) {
	var out []rng
	var total int64
	for _, p := range parts {
		total += p.Length
		if p.Length == 0 {
			continue
		}
		name := prefix + p.Key
		if n := len(out); n > 0 && out[n-1].name == name && out[n-1].off+out[n-1].n == p.Offset {
			out[n-1].n += p.Length
			continue
		}
		out = append(out, rng{name: name, off: p.Offset, n: p.Length})
	}
	return out, total
}

// plan cuts ranges into blocks. Ranges of copyMin bytes or more are copied by the
// service, at most maxCopy bytes a block; the rest are packed into blocks of blockSize
// bytes. A negative copyMin packs everything. When that makes more than maxBlocks
// blocks, fewer ranges are copied and more are packed, until it fits: packing
// everything gives the fewest blocks, one per blockSize bytes.
func plan(ranges []rng, blockSize, copyMin, maxCopy int64, maxBlocks int) ([]block, error) {
	for {
		blocks := cut(ranges, blockSize, copyMin, maxCopy)
		if len(blocks) <= maxBlocks {
			return blocks, nil
		}
		switch {
		case copyMin < 0:
			return nil, fmt.Errorf("the object would need %d blocks of %d bytes; the service allows %d", len(blocks), blockSize, maxBlocks)
		case copyMin >= maxCopy:
			copyMin = -1
		default:
			copyMin = min(copyMin*4, maxCopy)
		}
	}
}

func cut(ranges []rng, blockSize, copyMin, maxCopy int64) []block {
	var blocks []block
	var cur block
	flush := func() {
		if cur.size > 0 {
			blocks = append(blocks, cur)
			cur = block{}
		}
	}
	for _, r := range ranges {
		if copyMin >= 0 && r.n >= copyMin {
			flush()
			for off := int64(0); off < r.n; off += maxCopy {
				n := min(maxCopy, r.n-off)
				blocks = append(blocks, block{fromURL: true, size: n, slices: []rng{{name: r.name, off: r.off + off, n: n}}})
			}
			continue
		}
		for r.n > 0 {
			n := min(r.n, blockSize-cur.size)
			cur.slices = append(cur.slices, rng{name: r.name, off: r.off, n: n, blockAt: cur.size})
			cur.size += n
			r.off += n
			r.n -= n
			if cur.size == blockSize {
				flush()
			}
		}
	}
	flush()
	return blocks
}

// compose stages blocks and commits them under name; an object of one packed block or
// none is one Put Blob.
func (b *Bucket) compose(ctx context.Context, name string, blocks []block, sources map[string]*source) error {
	bb := b.cont.NewBlockBlobClient(name)
	if len(blocks) == 0 {
		_, err := bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(nil)), nil)
		return err
	}
	if len(blocks) == 1 && !blocks[0].fromURL {
		bp := b.bufs.Get().(*[]byte)
		defer b.bufs.Put(bp)
		buf := (*bp)[:blocks[0].size]
		if err := b.fill(ctx, buf, blocks[0].slices, sources); err != nil {
			return err
		}
		_, err := bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(buf)), nil)
		return err
	}
	st := b.newStager(ctx)
	for _, blk := range blocks {
		err := st.stage(func(ctx context.Context, id string) error {
			if blk.fromURL {
				return b.stageFromURL(ctx, bb, id, blk.slices[0], sources)
			}
			bp := b.bufs.Get().(*[]byte)
			defer b.bufs.Put(bp)
			buf := (*bp)[:blk.size]
			if err := b.fill(ctx, buf, blk.slices, sources); err != nil {
				return err
			}
			_, err := bb.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(buf)), nil)
			return err
		})
		if err != nil {
			break
		}
	}
	ids, err := st.wait()
	if err != nil {
		return err
	}
	_, err = bb.CommitBlockList(ctx, ids, nil)
	return err
}

// stageFromURL has the service copy r into block id.
func (b *Bucket) stageFromURL(ctx context.Context, bb *blockblob.Client, id string, r rng, sources map[string]*source) error {
	src := b.cont.NewBlobClient(r.name)
	u := src.URL() // with a SAS client, the URL carries it
	if b.canSign {
		var err error
		// A short-lived read SAS of this one blob; started a little in the past so a
		// service clock behind ours accepts it.
		u, err = src.GetSASURL(sas.BlobPermissions{Read: true}, time.Now().Add(time.Hour), &blob.GetSASURLOptions{StartTime: to.Ptr(time.Now().Add(-10 * time.Minute))})
		if err != nil {
			return err
		}
	}
	opts := &blockblob.StageBlockFromURLOptions{Range: blob.HTTPRange{Offset: r.off, Count: r.n}}
	if etag := sources[r.name].etag; etag != nil {
		opts.SourceModifiedAccessConditions = &blob.SourceModifiedAccessConditions{SourceIfMatch: etag}
	}
	_, err := bb.StageBlockFromURL(ctx, id, u, opts)
	if s := status(err); s == http.StatusNotImplemented {
		return fmt.Errorf("%w: %w", errNoServerCopy, err)
	}
	if status(err) == http.StatusNotFound {
		// The service could not find the source (CannotVerifyCopySource): it went.
		return sluice.Errorf(sluice.KindNotFound, "No content is stored for %s.", sources[r.name].key).WithErr(err)
	}
	return err
}

// maxGap is the most bytes between two slices of one object that fill reads and drops
// rather than making a request more.
const maxGap = 1 << 20

// fill reads slices into buf. The slices of one object are read in one request when
// they are close, so a block of many small extents of a few segments costs a request
// or so per segment, not one per extent.
func (b *Bucket) fill(ctx context.Context, buf []byte, in []rng, sources map[string]*source) error {
	byName := map[string][]rng{}
	var names []string
	for _, s := range in {
		if byName[s.name] == nil {
			names = append(names, s.name)
		}
		byName[s.name] = append(byName[s.name], s)
	}
	for _, name := range names {
		ss := byName[name]
		slices.SortStableFunc(ss, func(a, b rng) int { return cmp.Compare(a.off, b.off) })
		for i := 0; i < len(ss); {
			// One read covers ss[i:j]: slices in order, none overlapping the one before,
			// with small gaps.
			j := i + 1
			for j < len(ss) && ss[j].off >= ss[j-1].off+ss[j-1].n && ss[j].off-(ss[j-1].off+ss[j-1].n) <= maxGap {
				j++
			}
			if err := b.read(ctx, buf, ss[i:j], sources[name]); err != nil {
				return err
			}
			i = j
		}
	}
	return nil
}

// read fills buf with ss, slices of one object in order, from one ranged download.
func (b *Bucket) read(ctx context.Context, buf []byte, ss []rng, src *source) error {
	start, end := ss[0].off, ss[len(ss)-1].off+ss[len(ss)-1].n
	var ac *blob.AccessConditions
	if src.etag != nil {
		ac = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: src.etag}}
	}
	rc, err := b.download(ctx, ss[0].name, blob.HTTPRange{Offset: start, Count: end - start}, ac)
	if err != nil {
		return translate("compose from", src.key, err)
	}
	defer rc.Close()
	at := start
	for _, s := range ss {
		if _, err := io.CopyN(io.Discard, rc, s.off-at); err != nil {
			return fmt.Errorf("compose from %s: %w", src.key, err)
		}
		if _, err := io.ReadFull(rc, buf[s.blockAt:s.blockAt+s.n]); err != nil {
			return fmt.Errorf("compose from %s: %w", src.key, err)
		}
		at = s.off + s.n
	}
	return nil
}
