package main

// Pins the project's dependencies in go.mod until the packages that use
// them land; removed as they arrive.
import (
	_ "github.com/ProtonMail/go-crypto/openpgp/v2"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/pkg/sftp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/robfig/cron/v3"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/crypto/ssh/knownhosts"
	_ "golang.org/x/sync/errgroup"
	_ "modernc.org/sqlite"
)
