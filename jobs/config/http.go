package config

// HTTP is how the status page is served. The page is read-only; off
// loopback it is served only behind basic auth (Password) or TLS.
type HTTP struct {
	// User is the basic-auth user name (default resub).
	User string `yaml:"user"`
	// Password, a reference, turns basic auth on for every route.
	Password SecretRef `yaml:"password"`
	// TLS serves HTTPS with this certificate and key (PEM files).
	TLS HTTPTLS `yaml:"tls"`
}

// HTTPTLS names the status page's certificate and private key files.
type HTTPTLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// UserName is the basic-auth user name.
func (h HTTP) UserName() string {
	if h.User == "" {
		return "resub"
	}
	return h.User
}

// Enabled reports whether TLS is configured.
func (t HTTPTLS) Enabled() bool { return t.Cert != "" || t.Key != "" }

func (c *Config) validateHTTP(ps *problems) {
	for _, r := range c.HTTP.User {
		if r == ':' || r < 0x20 || r == 0x7f {
			ps.add("http.user", "a basic-auth user name has no ':' and no control characters")
			break
		}
	}
	c.checkRef(ps, "http.password", c.HTTP.Password, false)
	if t := c.HTTP.TLS; t.Enabled() {
		if t.Cert == "" {
			ps.add("http.tls.cert", "required with http.tls.key")
		} else {
			c.fileExists(ps, "http.tls.cert", t.Cert)
		}
		if t.Key == "" {
			ps.add("http.tls.key", "required with http.tls.cert")
		} else {
			c.fileExists(ps, "http.tls.key", t.Key)
		}
	}
}
