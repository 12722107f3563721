// Package client is a typed Go client of Sluice's API over net/http: files, uploads in
// parts, batches and deployments, on either route family. New speaks the OpenAI API
// under a /v1 base URL with "Authorization: Bearer"; NewAzure speaks the Azure OpenAI
// API under /openai with an api-version and an "api-key" header. Answers come back as
// the API's objects, and refusals as an *Error with the API's status, code, param and
// message. Bodies are streamed both ways: an upload is not held in memory and a
// download is copied to an io.Writer as it arrives.
//
// The package imports only the standard library, so that programs other than the
// sluice binary can use it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DefaultAPIVersion is the api-version NewAzure sends when it is given none.
const DefaultAPIVersion = "2025-04-01-preview"

// Options are the optional settings of a Client.
type Options struct {
	// HTTPClient sends the requests; nil means a client with no overall timeout, as
	// downloads may take long: bound each call with its context instead.
	HTTPClient *http.Client
	// UserAgent is sent as User-Agent when set.
	UserAgent string
}

// Client calls one Sluice server (or any server of the same API). It is safe for
// concurrent use.
type Client struct {
	base       *url.URL // the routes' prefix, e.g. http://host/v1 or http://host/openai
	apiKey     string
	azure      bool
	apiVersion string
	hc         *http.Client
	userAgent  string
}

// New returns a client of the OpenAI-style routes under baseURL, such as
// http://127.0.0.1:8080/v1. A base URL with no path gets /v1. The key, when not
// empty, is sent as "Authorization: Bearer KEY".
func New(baseURL, apiKey string, opts *Options) (*Client, error) {
	u, err := parseBase(baseURL)
	if err != nil {
		return nil, err
	}
	if u.Path == "" {
		u.Path = "/v1"
	}
	return newClient(u, apiKey, false, "", opts), nil
}

// NewAzure returns a client of the Azure OpenAI routes at endpoint, such as
// https://NAME.openai.azure.com or http://127.0.0.1:8080: requests go under
// ENDPOINT/openai with ?api-version=apiVersion (DefaultAPIVersion when empty), and the
// key, when not empty, is sent as "api-key: KEY". An endpoint that already ends in
// /openai or /openai/v1 is used as it is; under /openai/v1 no api-version is sent
// unless one is given.
func NewAzure(endpoint, apiKey, apiVersion string, opts *Options) (*Client, error) {
	u, err := parseBase(endpoint)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.HasSuffix(u.Path, "/openai/v1"):
	case strings.HasSuffix(u.Path, "/openai"):
		if apiVersion == "" {
			apiVersion = DefaultAPIVersion
		}
	default:
		u.Path += "/openai"
		if apiVersion == "" {
			apiVersion = DefaultAPIVersion
		}
	}
	return newClient(u, apiKey, true, apiVersion, opts), nil
}

func parseBase(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want an http:// or https:// URL such as http://127.0.0.1:8080/v1", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u, nil
}

func newClient(u *url.URL, key string, azure bool, version string, opts *Options) *Client {
	if opts == nil {
		opts = &Options{}
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: u, apiKey: key, azure: azure, apiVersion: version, hc: hc, userAgent: opts.UserAgent}
}

// BaseURL returns the prefix the routes are under, such as http://127.0.0.1:8080/v1.
func (c *Client) BaseURL() string { return c.base.String() }

// Azure reports whether the client speaks the Azure OpenAI routes.
func (c *Client) Azure() bool { return c.azure }

// Error is an error answer of the API, in its error shape:
// {"error": {"message", "type", "param", "code"}}. An answer that is not in that
// shape, from a proxy say, has only StatusCode and Message.
type Error struct {
	StatusCode int    // the HTTP status, e.g. 400
	Type       string // e.g. "invalid_request_error" or "server_error"
	Code       string // e.g. "token_limit_exceeded"; "" when the API sent null
	Param      string // the parameter at fault, e.g. "input_file_id"; "" when null
	Message    string // what went wrong, a sentence meant for people
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	b.WriteString(": " + e.Message)
	if e.Param != "" {
		b.WriteString(" (param " + e.Param + ")")
	}
	return b.String()
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// decodeError reads an error answer.
func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{StatusCode: resp.StatusCode}
	var body struct {
		Error *struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error != nil {
		e.Message, e.Type = body.Error.Message, body.Error.Type
		if body.Error.Param != nil {
			e.Param = *body.Error.Param
		}
		if body.Error.Code != nil {
			e.Code = *body.Error.Code
		}
		return e
	}
	e.Message = strings.TrimSpace(string(b))
	if len(e.Message) > 200 {
		e.Message = e.Message[:200] + "…"
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// request is one call of the API.
type request struct {
	method string
	path   string // under the base, e.g. "/files/file-1"
	query  url.Values
	body   io.Reader
	size   int64 // of body; -1 unknown
	ctype  string
	header http.Header
}

// newRequest builds the HTTP request of r: its URL under the base, the api-version,
// the key and the agent.
func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	u := *c.base
	u.Path += r.path
	q := url.Values{}
	for k, v := range r.query {
		q[k] = v
	}
	if c.apiVersion != "" {
		q.Set("api-version", c.apiVersion)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), r.body)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if r.body != nil && r.size >= 0 {
		req.ContentLength = r.size
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.apiKey != "" {
		if c.azure {
			req.Header.Set("api-key", c.apiKey)
		} else {
			req.Header.Set("Authorization", "Bearer "+c.apiKey)
		}
	}
	return req, nil
}

// send sends r and returns the answer when it is a success; an error answer is
// returned as an *Error with its body read and closed.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err // a *url.Error, which names the method and URL
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

// call sends r and decodes its JSON answer into out, keeping the raw bytes when out
// has a place for them.
func (c *Client) call(ctx context.Context, r request, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", r.method, r.path, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", r.method, r.path, err)
	}
	if k, ok := out.(keeper); ok {
		k.keep(b)
	}
	return nil
}

// callJSON sends in as a JSON body.
func (c *Client) callJSON(ctx context.Context, method, path string, header http.Header, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("client: encode %s %s: %w", method, path, err)
	}
	return c.call(ctx, request{method: method, path: path, body: bytes.NewReader(b), size: int64(len(b)),
		ctype: "application/json", header: header}, out)
}

// keeper is an object that keeps the JSON it was decoded from.
type keeper interface{ keep([]byte) }

// raw is embedded in the API's objects to keep the JSON they came as.
type raw struct{ json json.RawMessage }

func (r *raw) keep(b []byte) { r.json = append(json.RawMessage(nil), b...) }

// RawJSON returns the object as the API sent it, members the client does not know
// included; nil for an object the client did not receive.
func (r *raw) RawJSON() json.RawMessage { return r.json }

// List is a page of a list: its objects in order and whether more follow after LastID.
type List[T any] struct {
	Data    []*T
	FirstID string
	LastID  string
	HasMore bool

	raw
}

// UnmarshalJSON decodes a list page, keeping each object's own JSON.
func (l *List[T]) UnmarshalJSON(b []byte) error {
	var page struct {
		Data    []json.RawMessage `json:"data"`
		FirstID *string           `json:"first_id"`
		LastID  *string           `json:"last_id"`
		HasMore bool              `json:"has_more"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		return err
	}
	l.Data = make([]*T, len(page.Data))
	for i, d := range page.Data {
		v := new(T)
		if err := json.Unmarshal(d, v); err != nil {
			return err
		}
		if k, ok := any(v).(keeper); ok {
			k.keep(d)
		}
		l.Data[i] = v
	}
	if page.FirstID != nil {
		l.FirstID = *page.FirstID
	}
	if page.LastID != nil {
		l.LastID = *page.LastID
	}
	l.HasMore = page.HasMore
	return nil
}
