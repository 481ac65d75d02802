package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"resub/formats/mapping"
)

// Problem is one thing wrong with a configuration, at a path such as
// partners.mno-b.drop.sftp.known_hosts.
type Problem struct {
	Path string
	Line int // line in the file, 0 where unknown
	Msg  string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

// Error lists every problem of a configuration. It is a configuration
// error (exit code 2).
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d configuration problem(s)", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// ConfigError marks the error for the CLI's exit-code map.
func (e *Error) ConfigError() bool { return true }

// problems collects problems during validation.
type problems struct{ list []Problem }

func (ps *problems) add(path, format string, a ...any) {
	ps.list = append(ps.list, Problem{Path: path, Msg: fmt.Sprintf(format, a...)})
}

// addLine adds a problem whose line in the file is known.
func (ps *problems) addLine(path string, line int, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if line > 0 {
		msg += fmt.Sprintf(" (line %d)", line)
	}
	ps.list = append(ps.list, Problem{Path: path, Line: line, Msg: msg})
}

// Load reads, decodes strictly and validates the configuration at path.
// Every problem is reported at once in an *Error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Problems: []Problem{{Msg: err.Error()}}}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return Parse(abs, data)
}

// Parse decodes and validates a configuration held in memory; path names
// it in messages and anchors relative paths.
func Parse(path string, data []byte) (*Config, error) {
	ps := &problems{}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, &Error{File: path, Problems: []Problem{{Msg: "not valid YAML: " + err.Error()}}}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	cfg := &Config{path: path}
	walkKeys(doc, reflect.TypeOf(*cfg), "", ps)
	if err := doc.Decode(cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				ps.add("", "%s", m)
			}
		} else {
			ps.add("", "%v", err)
		}
	}
	cfg.path = path
	cfg.applyDefaults()
	cfg.applyBoundDefaults()
	cfg.validate(ps)
	cfg.validateBounds(ps)
	if len(ps.list) > 0 {
		return nil, &Error{File: path, Problems: ps.list}
	}
	return cfg, nil
}

// walkKeys reports unknown and duplicate mapping keys with their paths,
// comparing the YAML tree with the yaml tags of the target type.
func walkKeys(n *yaml.Node, t reflect.Type, path string, ps *problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == columnMappingType {
		// Kept as written, in formats/mapping's shape.
		t = mappingType
	}
	switch n.Kind {
	case yaml.MappingNode:
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			p := join(path, key)
			if seen[key] {
				ps.list = append(ps.list, Problem{Path: p, Line: k.Line, Msg: fmt.Sprintf("duplicate key (line %d)", k.Line)})
				// Drop the repeat so that decoding goes on and finds the
				// file's other problems.
				n.Content = append(n.Content[:i], n.Content[i+2:]...)
				i -= 2
				continue
			}
			seen[key] = true
			switch t.Kind() {
			case reflect.Map:
				walkKeys(v, t.Elem(), p, ps)
			case reflect.Struct:
				f, ok := fieldByTag(t, key)
				if !ok {
					ps.list = append(ps.list, Problem{Path: p, Line: k.Line, Msg: fmt.Sprintf("unknown key (line %d)", k.Line)})
					continue
				}
				walkKeys(v, f.Type, p, ps)
			}
		}
	case yaml.SequenceNode:
		if t.Kind() == reflect.Slice {
			for i, c := range n.Content {
				walkKeys(c, t.Elem(), path+"["+strconv.Itoa(i)+"]", ps)
			}
		}
	}
}

var (
	columnMappingType = reflect.TypeFor[ColumnMapping]()
	mappingType       = reflect.TypeFor[mapping.Mapping]()
)

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (c *Config) dir() string { return filepath.Dir(c.path) }

// Abs resolves a path from the configuration against its folder.
func (c *Config) Abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir(), p)
}

func (c *Config) applyDefaults() {
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	c.DataDir = c.Abs(c.DataDir)
	if c.Ledger == "" {
		c.Ledger = "sqlite:" + filepath.Join(c.DataDir, "ledger.db")
	} else if rest, ok := strings.CutPrefix(c.Ledger, "sqlite:"); ok {
		c.Ledger = "sqlite:" + c.Abs(rest)
	}
	if c.Retention == 0 {
		c.Retention = Duration(90 * 24 * 3600 * 1e9)
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = Duration(time.Minute)
	}
	if c.LedgerSlowStatement == nil {
		d := Duration(DefaultSlowStatement)
		c.LedgerSlowStatement = &d
	}
	if c.OTA.CounterJump == 0 {
		c.OTA.CounterJump = 16
	}
	if c.OTA.PoRMargin == 0 {
		c.OTA.PoRMargin = Duration(3600 * 1e9)
	}
	if c.Limits.MaxFileBytes == 0 {
		c.Limits.MaxFileBytes = 4 << 30
	}
	if c.Limits.MaxLineBytes == 0 {
		c.Limits.MaxLineBytes = 64 << 10
	}
	if c.Limits.MaxRecords == 0 {
		c.Limits.MaxRecords = 20_000_000
	}
	if c.Limits.MaxRecordErrors == 0 {
		c.Limits.MaxRecordErrors = DefaultMaxRecordErrors
	}
	for _, p := range c.Partners {
		if p == nil {
			continue
		}
		if s := p.Drop.SFTP; s != nil {
			if s.Port == 0 {
				s.Port = 22
			}
			if s.Timeout == 0 {
				s.Timeout = Duration(30 * 1e9)
			}
			if s.Keepalive == 0 {
				s.Keepalive = Duration(15 * 1e9)
			}
			if s.MaxSession == 0 {
				s.MaxSession = 2
			}
		}
		if p.SMPP != nil {
			p.SMPP.applyDefaults(c.OTA.Originator)
		}
		if p.PGP.Compression == "" {
			p.PGP.Compression = "none"
		}
		if p.Policy.MaxAttempts == 0 {
			p.Policy.MaxAttempts = 3
		}
		for i := range p.TransportKeys {
			if p.TransportKeys[i].Mode == "" {
				p.TransportKeys[i].Mode = "aes-kwp"
			}
		}
	}
	for _, pr := range c.Profiles {
		if pr == nil {
			continue
		}
		if pr.CLA == "" {
			pr.CLA = "00"
		}
		if pr.Format == "" {
			pr.Format = "compact"
		}
		if pr.ADOffset == 0 {
			pr.ADOffset = 3
		}
		if pr.Rate == 0 {
			pr.Rate = 10
		}
		if pr.Validity == 0 {
			pr.Validity = Duration(24 * 3600 * 1e9)
		}
		if pr.Algorithm == "" {
			pr.Algorithm = "milenage"
		}
		if pr.KeyIndex != nil {
			if pr.KeyIndex.Effect == "" {
				pr.KeyIndex.Effect = "immediate"
			}
			if pr.KeyIndex.Message == "" {
				pr.KeyIndex.Message = "same"
			}
		}
	}
	for i := range c.Jobs {
		if c.Jobs[i].Zone == "" {
			c.Jobs[i].Zone = "UTC"
		}
	}
}

// Redacted renders the configuration as YAML for display. Secret
// references print as written; anything that would be a secret given
// inline prints as [redacted].
func (c *Config) Redacted() string {
	b, err := yaml.Marshal(c)
	if err != nil {
		return "(unprintable configuration: " + err.Error() + ")"
	}
	return string(b)
}

var (
	reParty    = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{0,15}$`)
	reInstance = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)
	reName     = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	reHex      = regexp.MustCompile(`^[0-9a-fA-F]*$`)
	reFpr      = regexp.MustCompile(`^[0-9a-fA-F]{40}$|^[0-9a-fA-F]{64}$`)
	reDigit    = regexp.MustCompile(`^[0-9]+$`)
)

func sortedKeys[M ~map[string]V, V any](m M) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// DefaultSlowStatement is ledger_slow_statement when the file gives none:
// about ten times a step's longest statement at 100,000 cards (a
// set-based write of every card: 3.7 s embedded, 6.1 s on a server, on a
// loaded 2-core machine), so a million-card night warns of its longest
// set statements at most, while a statement that takes minutes on a bad
// plan or behind another writer's lock, which is what the log is for,
// always warns.
const DefaultSlowStatement = time.Minute

// SlowStatement is the threshold of the slow-statement log (0: off).
func (c *Config) SlowStatement() time.Duration {
	if c.LedgerSlowStatement == nil {
		return DefaultSlowStatement
	}
	return c.LedgerSlowStatement.D()
}
