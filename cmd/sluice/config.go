package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/httpapi"
	"github.com/sluice-batch/sluice/jsonl"
	"github.com/sluice-batch/sluice/upstream"
	"go.yaml.in/yaml/v3"
)

// Config is the --config file.
type Config struct {
	// APIKeys are admin keys of the default project: they see every project's files
	// and batches. Each project's keys see only their own.
	APIKeys     []string           `yaml:"api_keys"`
	Projects    []ProjectConfig    `yaml:"projects"`
	Deployments []DeploymentConfig `yaml:"deployments"`
	Engine      EngineConfig       `yaml:"engine"`
	// StorageAccounts are the Azure Storage accounts blob-mode batches and file imports
	// may read from and write to; a blob URL on any other account is refused.
	StorageAccounts []StorageAccountConfig `yaml:"storage_accounts"`
}

// StorageAccountConfig is a storage account and its credential: one of
// connection_string, account_key, sas and managed_identity.
type StorageAccountConfig struct {
	Name string `yaml:"name"`
	// BlobEndpoint is the blob service's URL; default https://NAME.blob.core.windows.net/.
	// The emulator's is path-style: http://127.0.0.1:10000/NAME.
	BlobEndpoint     string `yaml:"blob_endpoint"`
	ConnectionString string `yaml:"connection_string"`
	AccountKey       string `yaml:"account_key"`
	SAS              string `yaml:"sas"`
	// ManagedIdentity authenticates with Microsoft Entra ID through the environment's
	// credential chain (managed identity, workload identity, the Azure CLI's login).
	ManagedIdentity bool `yaml:"managed_identity"`
}

// ProjectConfig is a project, the keys that act for it, and its limits.
type ProjectConfig struct {
	Name string `yaml:"name"`
	// APIKeys are keys of the user role, given as they are.
	APIKeys []string    `yaml:"api_keys"`
	Keys    []KeyConfig `yaml:"keys"`
	// MaxBatches bounds the project's batches that have not ended; 0: no limit.
	MaxBatches int `yaml:"max_batches"`
	// EnqueuedTokenLimit bounds the input tokens of those batches, across
	// deployments, beside each deployment's own limit; unset: no limit.
	EnqueuedTokenLimit TokenLimit `yaml:"enqueued_token_limit"`
}

// KeyConfig is an API key of a project and its role. The key is given in one of four
// ways: key, the key itself; key_env, the environment variable that holds it;
// key_file, a file that holds it; key_sha256, the hex SHA-256 of the key, so that the
// config holds nothing a reader could call the API with.
type KeyConfig struct {
	Key       string `yaml:"key"`
	KeyEnv    string `yaml:"key_env"`
	KeyFile   string `yaml:"key_file"`
	KeySHA256 string `yaml:"key_sha256"`
	Role      string `yaml:"role"` // user (default) or admin
}

// DeploymentConfig is a batch deployment: what a line's body.model names.
type DeploymentConfig struct {
	Name         string   `yaml:"name"`
	Type         string   `yaml:"type"`     // global (default) or datazone
	Zone         string   `yaml:"zone"`     // the data zone of a datazone deployment, e.g. us or eu
	Model        string   `yaml:"model"`    // the model shown on its batches; default the name
	Encoding     string   `yaml:"encoding"` // tokenizer encoding; default o200k_base
	Endpoints    []string `yaml:"endpoints"`
	InputFormats []string `yaml:"input_formats"`
	// WindowPolicy is what a batch past its 24 h window does: continue (Azure OpenAI)
	// or expire (OpenAI). Unset, it follows the route the batch was created on.
	WindowPolicy string `yaml:"window_policy"`
	// MaxTokens sets max_tokens (max_output_tokens for responses) on lines that name
	// none (default) and caps lines that name more (max).
	MaxTokens struct {
		Default int `yaml:"default"`
		Max     int `yaml:"max"`
	} `yaml:"max_tokens"`
	// EnqueuedTokenLimit is a number ("200000000", "200M", "1.5B", "90K"), "default"
	// for the product's default for the model, or unset for no limit.
	EnqueuedTokenLimit TokenLimit `yaml:"enqueued_token_limit"`
	// DynamicQuota lets the deployment go past its limit, by DynamicQuotaShare of it
	// (default 0.5), while its upstreams have idle capacity.
	DynamicQuota      bool             `yaml:"dynamic_quota"`
	DynamicQuotaShare *float64         `yaml:"dynamic_quota_share"`
	Price             *PriceConfig     `yaml:"price"`
	Upstreams         []UpstreamConfig `yaml:"upstreams"`
}

// PriceConfig is what a deployment's tokens cost, per million.
type PriceConfig struct {
	Currency      string   `yaml:"currency"` // default USD
	Input         float64  `yaml:"input"`
	CachedInput   *float64 `yaml:"cached_input"` // default: input
	Output        float64  `yaml:"output"`
	BatchDiscount *float64 `yaml:"batch_discount"` // share taken off, default 0.5
}

// TokenLimit is an enqueued-token limit as the config writes it.
type TokenLimit struct {
	N       int64
	Default bool // "default": the product's default for the model
}

// UnmarshalYAML reads a number, a number with a K, M or B suffix, or "default".
func (l *TokenLimit) UnmarshalYAML(node *yaml.Node) error {
	v := strings.TrimSpace(node.Value)
	if v == "default" {
		*l = TokenLimit{Default: true}
		return nil
	}
	mult := 1.0
	switch {
	case strings.HasSuffix(v, "K"), strings.HasSuffix(v, "k"):
		mult = 1e3
	case strings.HasSuffix(v, "M"):
		mult = 1e6
	case strings.HasSuffix(v, "B"):
		mult = 1e9
	}
	if mult > 1 {
		v = v[:len(v)-1]
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(v, "_", ""), 64)
	if err != nil || f < 0 || f*mult > math.MaxInt64/2 {
		return fmt.Errorf("line %d: enqueued_token_limit %q: want a number of tokens such as 200000000 or 200M, or default", node.Line, node.Value)
	}
	*l = TokenLimit{N: int64(f * mult)}
	return nil
}

// defaultLimits are the product's default enqueued-token limits (the "default" tier of
// the seeds' quota table), by model name prefix, for global and data-zone deployments.
var defaultLimits = map[string]map[string]int64{
	"global": {
		"gpt-4.1": 200e6, "gpt-4.1-mini": 1e9, "gpt-4.1-nano": 1e9, "gpt-4o": 200e6, "gpt-4o-mini": 1e9,
		"gpt-4-turbo": 80e6, "gpt-4": 30e6, "gpt-35-turbo": 1e9, "o3-mini": 1e9, "o4-mini": 1e9,
	},
	"datazone": {
		"gpt-4.1": 30e6, "gpt-4.1-mini": 100e6, "gpt-4o": 30e6, "gpt-4o-mini": 100e6, "o3-mini": 100e6,
	},
}

// defaultLimit returns the product's default limit for a model of a deployment type:
// the entry whose name is the longest prefix of the model's.
func defaultLimit(typ, model string) (int64, bool) {
	best, n := "", int64(0)
	for name, limit := range defaultLimits[typ] {
		if strings.HasPrefix(model, name) && len(name) > len(best) {
			best, n = name, limit
		}
	}
	return n, best != ""
}

func (d *DeploymentConfig) typ() string {
	if d.Type == "" {
		return "global"
	}
	return d.Type
}

func (d *DeploymentConfig) model() string {
	if d.Model != "" {
		return d.Model
	}
	return d.Name
}

// UpstreamConfig is an OpenAI-compatible server of a deployment. Its key is given in
// one of three ways: api_key, the key itself; api_key_env, the environment variable
// that holds it; api_key_file, a file that holds it (surrounding whitespace trimmed),
// such as a mounted secret.
type UpstreamConfig struct {
	BaseURL        string `yaml:"base_url"`
	Model          string `yaml:"model"`
	APIKey         string `yaml:"api_key"`
	APIKeyEnv      string `yaml:"api_key_env"`
	APIKeyFile     string `yaml:"api_key_file"`
	MaxConcurrency int    `yaml:"max_concurrency"`
	// MinConcurrency, below max_concurrency, makes the limit adapt between the two.
	MinConcurrency int `yaml:"min_concurrency"`
	// LatencyTolerance is how far latency may rise over its floor, as a ratio above 1,
	// before the adaptive limit reads congestion; unset, the gate's default.
	LatencyTolerance float64 `yaml:"latency_tolerance"`
	// Load reads the server's own queue from its metrics; the limit then adapts
	// (min_concurrency defaults to 1) and leaves the server to others' requests.
	Load *UpstreamLoadConfig `yaml:"load"`
	// Zone is the data zone the server runs in (e.g. us, eu): a datazone deployment
	// uses only upstreams of its own zone.
	Zone string `yaml:"zone"`
	// MaxTokensOnly: the server reads max_tokens and ignores max_completion_tokens
	// (Ollama); a line's max_completion_tokens is then sent as max_tokens too.
	MaxTokensOnly bool `yaml:"max_tokens_only"`
}

// UpstreamLoadConfig is where and how an upstream's load is read: `load: {metrics: vllm}`.
type UpstreamLoadConfig struct {
	// Metrics is the server kind, which names the gauges read: vllm or sglang.
	Metrics string `yaml:"metrics"`
	// URL is the metrics endpoint; unset, /metrics at the root of base_url's host.
	URL string `yaml:"url"`
	// Interval is the time between reads; unset, 250ms.
	Interval time.Duration `yaml:"interval"`
	// MaxWaiting is how many requests may wait at the server before it counts as full.
	MaxWaiting int `yaml:"max_waiting"`
	// Headroom is how many of the server's slots the batch leaves free for others.
	Headroom *int `yaml:"headroom"`
	// MaxCacheUsage (0 to 1) counts the server as full from this KV-cache usage on.
	MaxCacheUsage float64 `yaml:"max_cache_usage"`
}

// EngineConfig tunes the engine; zero values keep its defaults.
type EngineConfig struct {
	MaxAttempts int `yaml:"max_attempts"`
	// RequestTimeout bounds one attempt (default 10m). Once an upstream has answered
	// enough requests, an attempt's timeout is its expected time from the upstream's
	// pace and the line's max_tokens, times TimeoutFactor (default 4), at least
	// MinRequestTimeout (default 1s), at most RequestTimeout.
	RequestTimeout    time.Duration `yaml:"request_timeout"`
	TimeoutFactor     float64       `yaml:"timeout_factor"`
	MinRequestTimeout time.Duration `yaml:"min_request_timeout"`
	// ConnectTimeout bounds how long a connection to an upstream takes to open;
	// default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	CancelGrace    time.Duration `yaml:"cancel_grace"`
	LeaseDuration  time.Duration `yaml:"lease_duration"`
	BackoffBase    time.Duration `yaml:"backoff_base"`
	BackoffMax     time.Duration `yaml:"backoff_max"`
	// OutageBudget is how long a line waits for an upstream that is down or busy
	// before it fails; default 24h.
	OutageBudget time.Duration `yaml:"outage_budget"`
}

// LoadConfig reads and validates a config file, with upstream keys from the process's
// environment.
func LoadConfig(path string) (*Config, error) { return loadConfig(path, os.Getenv) }

// loadConfig reads and validates a config file, and reads the upstream keys it names
// in the environment (getenv) or in files.
func loadConfig(path string, getenv func(string) string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		// The decoder may quote a value, and a value may be a URL with a password.
		return nil, fmt.Errorf("config %s: %s", path, upstream.Redact(err.Error()))
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.readKeys(getenv); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

// readKeys sets each upstream's APIKey from its api_key_env or api_key_file, and each
// project key's Key from its key_env or key_file.
func (c *Config) readKeys(getenv func(string) string) error {
	for i := range c.Projects {
		for j := range c.Projects[i].Keys {
			k := &c.Projects[i].Keys[j]
			field := fmt.Sprintf("projects[%d].keys[%d]", i, j)
			if err := readSecret(getenv, &k.Key, field+".key_env", k.KeyEnv, field+".key_file", k.KeyFile); err != nil {
				return err
			}
		}
	}
	for i := range c.Deployments {
		for j := range c.Deployments[i].Upstreams {
			u := &c.Deployments[i].Upstreams[j]
			field := fmt.Sprintf("deployments[%d].upstreams[%d]", i, j)
			if err := readSecret(getenv, &u.APIKey, field+".api_key_env", u.APIKeyEnv, field+".api_key_file", u.APIKeyFile); err != nil {
				return err
			}
		}
	}
	return nil
}

// readSecret sets *dst from the environment variable env, or else from file, when one
// is named; envField and fileField name them in errors.
func readSecret(getenv func(string) string, dst *string, envField, env, fileField, file string) error {
	switch {
	case env != "":
		if *dst = getenv(env); *dst == "" {
			return fmt.Errorf("%s: %s is not set", envField, env)
		}
	case file != "":
		key, err := readKeyFile(file)
		if err != nil {
			return fmt.Errorf("%s: %w", fileField, err)
		}
		*dst = key
	}
	return nil
}

// readKeyFile reads a key kept in a file, such as a mounted secret: its content
// without surrounding whitespace. The error names the file, never its content.
func readKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return key, nil
}

// Validate returns an error naming the first field that is wrong.
func (c *Config) Validate() error {
	names := map[string]bool{}
	for i, a := range c.StorageAccounts {
		n := 0
		for _, set := range []bool{a.ConnectionString != "", a.AccountKey != "", a.SAS != "", a.ManagedIdentity} {
			if set {
				n++
			}
		}
		switch {
		case a.Name == "":
			return fmt.Errorf("storage_accounts[%d].name is required", i)
		case names[a.Name]:
			return fmt.Errorf("storage_accounts[%d].name: %s is listed twice", i, a.Name)
		case n != 1:
			return fmt.Errorf("storage_accounts[%d] (%s): give exactly one of connection_string, account_key, sas and managed_identity", i, a.Name)
		}
		names[a.Name] = true
	}
	seen := map[string]bool{}
	for i, d := range c.Deployments {
		if d.Name == "" {
			return fmt.Errorf("deployments[%d].name is empty", i)
		}
		if seen[d.Name] {
			return fmt.Errorf("deployments[%d].name %q is used twice", i, d.Name)
		}
		seen[d.Name] = true
		switch d.Type {
		case "", "global", "datazone":
		default:
			return fmt.Errorf("deployments[%d].type %q: use global or datazone", i, d.Type)
		}
		if len(d.Upstreams) == 0 {
			return fmt.Errorf("deployments[%d].upstreams is empty", i)
		}
		if d.Zone != "" && d.typ() != "datazone" {
			return fmt.Errorf("deployments[%d].zone is set, but only a datazone deployment has a zone", i)
		}
		if d.typ() == "datazone" {
			// Its lines must not leave its zone: every upstream is in it, so that when
			// they are all down the batches wait rather than go elsewhere.
			if d.Zone == "" {
				return fmt.Errorf("deployments[%d].zone is required for a datazone deployment", i)
			}
			for j, u := range d.Upstreams {
				if u.Zone != d.Zone {
					return fmt.Errorf("deployments[%d].upstreams[%d].zone is %q; a datazone deployment in %q uses only upstreams in its zone", i, j, u.Zone, d.Zone)
				}
			}
		}
		for _, ep := range d.Endpoints {
			if jsonl.NormalizeEndpoint(ep) == "" {
				return fmt.Errorf("deployments[%d].endpoints: %q is not one of %s", i, ep, strings.Join(sluice.Endpoints, ", "))
			}
		}
		if d.MaxTokens.Default < 0 || d.MaxTokens.Max < 0 || (d.MaxTokens.Max > 0 && d.MaxTokens.Default > d.MaxTokens.Max) {
			return fmt.Errorf("deployments[%d].max_tokens: default and max must be positive, default at most max", i)
		}
		switch sluice.WindowPolicy(d.WindowPolicy) {
		case "", sluice.WindowContinue, sluice.WindowExpire:
		default:
			return fmt.Errorf("deployments[%d].window_policy: %q: use continue or expire", i, d.WindowPolicy)
		}
		for _, f := range d.InputFormats {
			if f != "text" && f != "image" {
				return fmt.Errorf("deployments[%d].input_formats: %q: use text and image", i, f)
			}
		}
		if d.EnqueuedTokenLimit.Default {
			if _, ok := defaultLimit(d.typ(), d.model()); !ok {
				return fmt.Errorf("deployments[%d].enqueued_token_limit: the product has no default for model %q as a %s deployment; give a number", i, d.model(), d.typ())
			}
		}
		if s := d.DynamicQuotaShare; s != nil && (*s < 0 || *s > 10) {
			return fmt.Errorf("deployments[%d].dynamic_quota_share %g: want a share from 0 to 10", i, *s)
		}
		if p := d.Price; p != nil {
			if p.Input < 0 || p.Output < 0 || (p.CachedInput != nil && *p.CachedInput < 0) {
				return fmt.Errorf("deployments[%d].price: prices cannot be negative", i)
			}
			if p.BatchDiscount != nil && (*p.BatchDiscount < 0 || *p.BatchDiscount > 1) {
				return fmt.Errorf("deployments[%d].price.batch_discount %g: want a share from 0 to 1", i, *p.BatchDiscount)
			}
		}
		for j, u := range d.Upstreams {
			if err := checkBaseURL(u.BaseURL); err != nil {
				return fmt.Errorf("deployments[%d].upstreams[%d].base_url: %w", i, j, err)
			}
			n := 0
			for _, set := range []bool{u.APIKey != "", u.APIKeyEnv != "", u.APIKeyFile != ""} {
				if set {
					n++
				}
			}
			if n > 1 {
				return fmt.Errorf("deployments[%d].upstreams[%d]: give one of api_key, api_key_env and api_key_file", i, j)
			}
			if u.MaxConcurrency < 0 {
				return fmt.Errorf("deployments[%d].upstreams[%d].max_concurrency is negative", i, j)
			}
			if t := u.LatencyTolerance; t != 0 && t <= 1 {
				return fmt.Errorf("deployments[%d].upstreams[%d].latency_tolerance %g: want a ratio above 1, such as 1.5", i, j, t)
			}
			if l := u.Load; l != nil {
				if err := l.validate(); err != nil {
					return fmt.Errorf("deployments[%d].upstreams[%d].load.%w", i, j, err)
				}
			}
		}
	}
	projects := make(map[string]bool)
	for i, p := range c.Projects {
		if p.Name == "" {
			return fmt.Errorf("projects[%d].name is empty", i)
		}
		if projects[p.Name] {
			return fmt.Errorf("projects[%d]: a project named %q is listed twice", i, p.Name)
		}
		projects[p.Name] = true
		if p.MaxBatches < 0 {
			return fmt.Errorf("projects[%d].max_batches is negative", i)
		}
		if p.EnqueuedTokenLimit.Default {
			return fmt.Errorf("projects[%d].enqueued_token_limit: a project has no default limit; give a number", i)
		}
		for j, k := range p.Keys {
			n := 0
			for _, set := range []bool{k.Key != "", k.KeyEnv != "", k.KeyFile != "", k.KeySHA256 != ""} {
				if set {
					n++
				}
			}
			if n != 1 {
				return fmt.Errorf("projects[%d].keys[%d]: give one of key, key_env, key_file and key_sha256", i, j)
			}
			if k.KeySHA256 != "" {
				if b, err := hex.DecodeString(k.KeySHA256); err != nil || len(b) != sha256.Size {
					return fmt.Errorf("projects[%d].keys[%d].key_sha256: want 64 hex digits, the SHA-256 of the key", i, j)
				}
			}
			switch sluice.Role(k.Role) {
			case "", sluice.RoleUser, sluice.RoleAdmin:
			default:
				return fmt.Errorf("projects[%d].keys[%d].role %q: want user or admin", i, j, k.Role)
			}
		}
	}
	// A lease is extended every quarter of its length; shorter than a few seconds, a
	// busy process loses leases on chunks it is still sending and sends them twice.
	if l := c.Engine.LeaseDuration; l != 0 && l < minLeaseDuration {
		return fmt.Errorf("engine.lease_duration %s is shorter than %s", l, minLeaseDuration)
	}
	return c.Engine.validateTimeouts()
}

// validateTimeouts checks the engine's timeouts; its errors name the field.
func (e *EngineConfig) validateTimeouts() error {
	switch {
	case e.RequestTimeout < 0:
		return fmt.Errorf("engine.request_timeout %s is negative", e.RequestTimeout)
	case e.MinRequestTimeout < 0:
		return fmt.Errorf("engine.min_request_timeout %s is negative", e.MinRequestTimeout)
	case e.ConnectTimeout < 0:
		return fmt.Errorf("engine.connect_timeout %s is negative", e.ConnectTimeout)
	case e.TimeoutFactor != 0 && !(e.TimeoutFactor >= 1):
		return fmt.Errorf("engine.timeout_factor %g: want 1 or more, the timeout over an attempt's expected time", e.TimeoutFactor)
	case e.RequestTimeout > 0 && e.MinRequestTimeout > e.RequestTimeout:
		return fmt.Errorf("engine.min_request_timeout %s is longer than engine.request_timeout %s", e.MinRequestTimeout, e.RequestTimeout)
	}
	return nil
}

// validate checks a load block; its errors start with the field's name.
func (l *UpstreamLoadConfig) validate() error {
	if !slices.Contains(upstream.MetricsKinds(), l.Metrics) {
		return fmt.Errorf("metrics %q: want one of %s", l.Metrics, strings.Join(upstream.MetricsKinds(), ", "))
	}
	if l.URL != "" {
		if err := checkBaseURL(l.URL); err != nil {
			return fmt.Errorf("url: %w", err)
		}
	}
	switch {
	case l.Interval < 0 || (l.Interval > 0 && l.Interval < 10*time.Millisecond):
		return fmt.Errorf("interval %s: want 10ms or more", l.Interval)
	case l.MaxWaiting < 0:
		return fmt.Errorf("max_waiting %d is negative", l.MaxWaiting)
	case l.Headroom != nil && *l.Headroom < 0:
		return fmt.Errorf("headroom %d is negative", *l.Headroom)
	case l.MaxCacheUsage < 0 || l.MaxCacheUsage > 1:
		return fmt.Errorf("max_cache_usage %g: want a share from 0 to 1", l.MaxCacheUsage)
	}
	return nil
}

// minLeaseDuration is the shortest engine.lease_duration accepted.
const minLeaseDuration = 10 * time.Second

// checkBaseURL checks an upstream's base URL. Its errors show the URL redacted: it
// may hold a password.
func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error's text is the whole URL
		}
		return fmt.Errorf("%q is not a URL: %v", upstream.Redact(s), err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an http:// or https:// URL such as http://127.0.0.1:8000/v1")
	}
	return nil
}

// Keys returns the API keys of the projects, each with its project and role; APIKeys
// are the default project's admin keys besides.
func (c *Config) Keys() []httpapi.Key {
	var keys []httpapi.Key
	for _, p := range c.Projects {
		for _, k := range p.APIKeys {
			keys = append(keys, httpapi.Key{Secret: k, Caller: sluice.Caller{Project: p.Name, Role: sluice.RoleUser}})
		}
		for _, k := range p.Keys {
			role := sluice.Role(k.Role)
			if role == "" {
				role = sluice.RoleUser
			}
			keys = append(keys, httpapi.Key{Secret: k.Key, SHA256: k.KeySHA256, Caller: sluice.Caller{Project: p.Name, Role: role}})
		}
	}
	return keys
}

// firstKey returns a key the config accepts, admin keys first; "" when it holds none
// in the clear.
func (c *Config) firstKey() string {
	if len(c.APIKeys) > 0 {
		return c.APIKeys[0]
	}
	for _, k := range c.Keys() {
		if k.Secret != "" {
			return k.Secret
		}
	}
	return ""
}

// projectLimits returns each project's limits, by name.
func (c *Config) projectLimits() map[string]sluice.ProjectLimits {
	out := make(map[string]sluice.ProjectLimits)
	for _, p := range c.Projects {
		out[p.Name] = sluice.ProjectLimits{Batches: p.MaxBatches, EnqueuedTokens: p.EnqueuedTokenLimit.N}
	}
	return out
}

// defaultHeadroom is the slots an upstream whose load is read leaves free for others
// when its config does not say: a sixteenth of max_concurrency (16 when unset), which
// P5 measured (BENCHMARKS.md).
func defaultHeadroom(maxConcurrency int) int {
	if maxConcurrency <= 0 {
		maxConcurrency = 16
	}
	return maxConcurrency / 16
}

// domain returns the deployments as the engine takes them.
func (c *Config) domain() []sluice.Deployment {
	var out []sluice.Deployment
	for _, d := range c.Deployments {
		dep := sluice.Deployment{Name: d.Name, Type: d.typ(), Zone: d.Zone, Model: d.Model, Encoding: d.Encoding,
			InputFormats: d.InputFormats, WindowPolicy: sluice.WindowPolicy(d.WindowPolicy),
			MaxTokens: sluice.TokenBounds{Default: d.MaxTokens.Default, Max: d.MaxTokens.Max}}
		for _, ep := range d.Endpoints {
			dep.Endpoints = append(dep.Endpoints, jsonl.NormalizeEndpoint(ep))
		}
		dep.Quota = sluice.Quota{EnqueuedTokenLimit: d.EnqueuedTokenLimit.N, Dynamic: d.DynamicQuota, DynamicShare: 0.5}
		if d.EnqueuedTokenLimit.Default {
			dep.Quota.EnqueuedTokenLimit, _ = defaultLimit(d.typ(), d.model())
		}
		if d.DynamicQuotaShare != nil {
			dep.Quota.DynamicShare = *d.DynamicQuotaShare
		}
		if p := d.Price; p != nil {
			dep.Price = sluice.Price{Currency: p.Currency, Input: p.Input, CachedInput: p.Input, Output: p.Output, BatchDiscount: 0.5}
			if dep.Price.Currency == "" {
				dep.Price.Currency = "USD"
			}
			if p.CachedInput != nil {
				dep.Price.CachedInput = *p.CachedInput
			}
			if p.BatchDiscount != nil {
				dep.Price.BatchDiscount = *p.BatchDiscount
			}
		}
		for _, u := range d.Upstreams {
			up := sluice.Upstream{
				BaseURL: u.BaseURL, Model: u.Model, APIKey: u.APIKey, MaxConcurrency: u.MaxConcurrency, MinConcurrency: u.MinConcurrency,
				MaxTokensOnly: u.MaxTokensOnly, LatencyTolerance: u.LatencyTolerance,
			}
			if l := u.Load; l != nil {
				up.Load = &sluice.UpstreamLoad{Metrics: l.Metrics, URL: l.URL, Interval: l.Interval, MaxWaiting: l.MaxWaiting,
					Headroom: defaultHeadroom(u.MaxConcurrency), MaxCacheUsage: l.MaxCacheUsage}
				if l.Headroom != nil {
					up.Load.Headroom = *l.Headroom
				}
			}
			dep.Upstreams = append(dep.Upstreams, up)
		}
		out = append(out, dep)
	}
	return out
}
