package sim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sluice-batch/sluice/sim"
)

func ExampleNew() {
	srv := httptest.NewServer(sim.New(sim.Options{}))
	defer srv.Close()

	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]}`
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var out struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		fmt.Println(err)
		return
	}
	c := out.Choices[0]
	fmt.Println("status:", resp.StatusCode)
	fmt.Println("model:", out.Model)
	fmt.Println("content:", c.Message.Content)
	fmt.Println("finish_reason:", c.FinishReason)
	fmt.Println("prompt_tokens:", out.Usage.PromptTokens) // "Say hello." is 4 tokens, plus 3 for the message
	fmt.Println("usage adds up:", out.Usage.CompletionTokens == sim.CountTokens(c.Message.Content) &&
		out.Usage.TotalTokens == out.Usage.PromptTokens+out.Usage.CompletionTokens)
	// Output:
	// status: 200
	// model: gpt-4o-mini
	// content: Closes moves returns steady.
	// finish_reason: stop
	// prompt_tokens: 7
	// usage adds up: true
}
