package config

import (
	"errors"
	"strings"
	"testing"
)

func TestHTTPSection(t *testing.T) {
	for _, tc := range []struct {
		name, http string
		want       []string // problems; none: valid
	}{
		{"absent", "", nil},
		{"password reference", "http: {password: env:RESUB_TEST_HTTP_PW}", nil},
		{"user and tls", "http: {user: ops, tls: {cert: master.key, key: tk.key}}", nil},
		{"inline password", "http: {password: hunter2-but-longer}", []string{"http.password: secret given inline"}},
		{"cert without key", "http: {tls: {cert: master.key}}", []string{"http.tls.key: required with http.tls.cert"}},
		{"missing files", "http: {tls: {cert: none.crt, key: none.key}}", []string{"http.tls.cert: file not found", "http.tls.key: file not found"}},
		{"user with a colon", "http: {user: 'a:b', password: env:X}", []string{"http.user:"}},
		{"unknown key", "http: {listen: 0.0.0.0:80}", []string{"http.listen: unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fixture(t)
			cfg, err := Load(writeConfig(t, dir, validYAML+tc.http+"\n"))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if cfg.HTTP.UserName() == "" {
					t.Fatal("no user name")
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *Error, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the inline password is printed:\n%v", err)
			}
		})
	}
}
