package status

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTLSOffLoopback serves every interface over TLS with a self-signed
// certificate: HTTPS answers, plain HTTP does not.
func TestTLSOffLoopback(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "resub status"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "status.crt"), filepath.Join(dir, "status.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.HTTP.TLS.Cert, cfg.HTTP.TLS.Key = certFile, keyFile
	s, err := New(Options{Config: cfg, Ledger: syntheticLedger(t, dir, 100), Addr: "0.0.0.0:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	_, port, _ := net.SplitHostPort(s.Addr())
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL %s", s.URL())
	}
	pool := x509.NewCertPool()
	pool.AddCert(mustParse(t, der))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 30 * time.Second}
	resp, err := client.Get("https://127.0.0.1:" + port + "/api/overview")
	if err != nil {
		t.Fatal(err)
	}
	var ov Overview
	err = json.NewDecoder(resp.Body).Decode(&ov)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || ov.TotalN != 100 {
		t.Fatalf("over TLS: %d %v %d", resp.StatusCode, err, ov.TotalN)
	}
	resp, err = http.Get("http://127.0.0.1:" + port + "/api/overview")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered on the TLS listener")
		}
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSnapshotRefreshes shows the overview's figures shared while fresh,
// and recomputed in the background once stale.
func TestSnapshotRefreshes(t *testing.T) {
	s, ts := newTestServer(t, 1000, "")
	total := func() int {
		_, body := do(t, http.MethodGet, ts.URL+"/api/overview", nil)
		var ov Overview
		if err := json.Unmarshal([]byte(body), &ov); err != nil {
			t.Fatal(err)
		}
		return ov.TotalN
	}
	if n := total(); n != 1000 {
		t.Fatalf("first: %d", n)
	}
	if _, err := s.o.Ledger.SQL().Exec(`INSERT INTO cards (iccid, imsi, state, created_at, updated_at) VALUES ('8999901999999999990', '999010000000000', 'active', '2026-11-05T00:00:00Z', '2026-11-05T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	if n := total(); n != 1000 {
		t.Fatalf("a fresh snapshot was recomputed: %d", n)
	}
	time.Sleep(minFresh + 100*time.Millisecond)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if n := total(); n == 1001 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stale snapshot was never recomputed")
		}
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}
