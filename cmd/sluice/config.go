package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sluice-batch/sluice"
	"go.yaml.in/yaml/v3"
)

// Config is the --config file.
type Config struct {
	// APIKeys are accepted in addition to the keys of every project.
	APIKeys     []string           `yaml:"api_keys"`
	Projects    []ProjectConfig    `yaml:"projects"`
	Deployments []DeploymentConfig `yaml:"deployments"`
	Engine      EngineConfig       `yaml:"engine"`
}

// ProjectConfig is a project and the keys that act for it.
type ProjectConfig struct {
	Name    string   `yaml:"name"`
	APIKeys []string `yaml:"api_keys"`
}

// DeploymentConfig is a batch deployment: what a line's body.model names.
type DeploymentConfig struct {
	Name      string           `yaml:"name"`
	Type      string           `yaml:"type"` // global (default) or datazone
	Upstreams []UpstreamConfig `yaml:"upstreams"`
}

// UpstreamConfig is an OpenAI-compatible server of a deployment.
type UpstreamConfig struct {
	BaseURL        string `yaml:"base_url"`
	Model          string `yaml:"model"`
	APIKey         string `yaml:"api_key"`
	MaxConcurrency int    `yaml:"max_concurrency"`
}

// EngineConfig tunes the engine; zero values keep its defaults.
type EngineConfig struct {
	MaxAttempts    int           `yaml:"max_attempts"`
	RequestTimeout time.Duration `yaml:"request_timeout"`
	CancelGrace    time.Duration `yaml:"cancel_grace"`
	LeaseDuration  time.Duration `yaml:"lease_duration"`
	BackoffBase    time.Duration `yaml:"backoff_base"`
	BackoffMax     time.Duration `yaml:"backoff_max"`
}

// LoadConfig reads and validates a config file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

// Validate returns an error naming the first field that is wrong.
func (c *Config) Validate() error {
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
		for j, u := range d.Upstreams {
			if err := checkBaseURL(u.BaseURL); err != nil {
				return fmt.Errorf("deployments[%d].upstreams[%d].base_url: %w", i, j, err)
			}
			if u.MaxConcurrency < 0 {
				return fmt.Errorf("deployments[%d].upstreams[%d].max_concurrency is negative", i, j)
			}
		}
	}
	for i, p := range c.Projects {
		if p.Name == "" {
			return fmt.Errorf("projects[%d].name is empty", i)
		}
	}
	// A lease is extended every quarter of its length; shorter than a few seconds, a
	// busy process loses leases on chunks it is still sending and sends them twice.
	if l := c.Engine.LeaseDuration; l != 0 && l < minLeaseDuration {
		return fmt.Errorf("engine.lease_duration %s is shorter than %s", l, minLeaseDuration)
	}
	return nil
}

// minLeaseDuration is the shortest engine.lease_duration accepted.
const minLeaseDuration = 10 * time.Second

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an http:// or https:// URL such as http://127.0.0.1:8000/v1")
	}
	return nil
}

// Keys returns every API key the config accepts.
func (c *Config) Keys() []string {
	keys := append([]string(nil), c.APIKeys...)
	for _, p := range c.Projects {
		keys = append(keys, p.APIKeys...)
	}
	return keys
}

// domain returns the deployments as the engine takes them.
func (c *Config) domain() []sluice.Deployment {
	var out []sluice.Deployment
	for _, d := range c.Deployments {
		dep := sluice.Deployment{Name: d.Name, Type: d.Type}
		if dep.Type == "" {
			dep.Type = "global"
		}
		for _, u := range d.Upstreams {
			dep.Upstreams = append(dep.Upstreams, sluice.Upstream{
				BaseURL: u.BaseURL, Model: u.Model, APIKey: u.APIKey, MaxConcurrency: u.MaxConcurrency,
			})
		}
		out = append(out, dep)
	}
	return out
}
