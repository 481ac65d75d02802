package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"resub/crypto/pgp"
	"resub/formats/native"
	"resub/formats/ota"
	"resub/processor"
	"resub/samples/fleet"
	"resub/samples/smsc"
)

// Checkpoints where a Stage stops: the named party's job has exactly one
// input waiting and nothing else to do.
const (
	// AtSwitchRequest: the M2M operator's signed switch-request waits in
	// MNOB's drop (MNOB's job "switch-request"); the 3a fleet is imported
	// and authorised at MNOA.
	AtSwitchRequest = "b-switch-request"
	// AtIMSIList: MNOB's signed imsi-list waits in MNOA's drop (MNOA's
	// job "imsi-list"); the 3a fleet is imported and authorised at MNOA.
	AtIMSIList = "a-imsi-list"
	// AtHandover: MNOA's 3a handover waits in MNOB's drop (MNOB's job
	// "handover-in"); every card was confirmed over the air.
	AtHandover = "b-handover"
	// AtKeyRequest: MNOB's 3b key-request waits in the manufacturer's drop
	// (MFR's job "key-request-b"); MNOA released the next index.
	AtKeyRequest = "m-key-request"
	// AtKeyResponse: the manufacturer's key-response waits in MNOB's drop
	// (MNOB's job "key-response"); every card waits for its pair there.
	AtKeyResponse = "b-key-response"
)

// StageOptions describe a staged world.
type StageOptions struct {
	// Dir receives every file (required: tests restore it from copies).
	Dir string
	// Cards is the fleet's size (default 8).
	Cards int
	// Until is the checkpoint to stop at (AtSwitchRequest, AtIMSIList,
	// AtHandover, AtKeyRequest, AtKeyResponse).
	Until string
	// Run, if set, runs one job of a party (its configuration file, the
	// job's name) instead of the stage running it in this process: a test
	// hands it to a resub binary (e.g. one built without the race
	// detector, which slows the stage tenfold). The secrets are in this
	// process's environment for the child to inherit.
	Run func(ctx context.Context, config, job string) error
	// Pause, if set, is called before each job the stage runs, with
	// every runtime closed when Run is set (a test may copy the folder
	// there: another checkpoint from the same world).
	Pause func(party, job string) error
}

// Stage is the demo's world of MNO A, MNO B and the manufacturer, played
// up to a checkpoint and then left for others (a test's child processes
// running `resub run --once`) to go on from. Each party has its
// configuration file and ledger; the SFTP server between them stays up
// until Close. Every runtime is closed when NewStage returns, so the
// folder may be copied.
type Stage struct {
	w        *world
	fleet    fleet.Options
	job      [2]string
	run      func(ctx context.Context, config, job string) error
	pause    func(party, job string) error
	profiles map[string]*ota.Profile
}

// NewStage plays the world up to o.Until.
func NewStage(ctx context.Context, o StageOptions) (_ *Stage, err error) {
	if o.Dir == "" {
		return nil, errors.New("stage: a folder is required")
	}
	if o.Cards == 0 {
		o.Cards = 8
	}
	w, err := newWorld(Options{Dir: o.Dir})
	if err != nil {
		return nil, err
	}
	s := &Stage{w: w, run: o.Run, pause: o.Pause, profiles: map[string]*ota.Profile{}}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	for _, code := range []string{"MNOA", "MNOB", "MFR"} {
		if _, err := w.addParty(code); err != nil {
			return nil, err
		}
	}
	if err := w.setEnv(); err != nil {
		return nil, err
	}
	for _, code := range []string{"MNOA", "MNOB", "MFR"} {
		p := w.parties[code]
		if err := w.writeConfig(p); err != nil {
			return nil, fmt.Errorf("%s configuration: %w", code, err)
		}
		if err := w.open(ctx, p); err != nil {
			return nil, fmt.Errorf("%s: %w", code, err)
		}
	}
	for name, pr := range w.parties["MNOA"].rt.Party.Profiles {
		s.profiles[name] = pr.OTA
	}
	if s.run != nil {
		for _, p := range w.parties {
			if err := p.rt.Close(); err != nil {
				return nil, err
			}
			p.rt = nil
		}
	}
	switch o.Until {
	case AtSwitchRequest, AtIMSIList, AtHandover:
		err = s.play3a(ctx, o)
	case AtKeyRequest, AtKeyResponse:
		err = s.play3b(ctx, o)
	default:
		err = fmt.Errorf("stage: unknown checkpoint %q", o.Until)
	}
	if err != nil {
		return nil, err
	}
	for _, p := range w.parties {
		if p.rt != nil {
			if err := p.rt.Close(); err != nil {
				return nil, err
			}
			p.rt = nil
		}
	}
	return s, nil
}

func (s *Stage) play3a(ctx context.Context, o StageOptions) error {
	w := s.w
	prof := s.profiles["usim-aes"]
	s.fleet = fleet.Options{N: o.Cards, ICCIDBody: "8999901", IMSIBase: "001010000000001", MSISDNBase: "999100000001", Seed: "stage-3a", Profile: prof, Counter: 5}
	f, err := fleet.New(s.fleet)
	if err != nil {
		return err
	}
	cut := w.clock().AddDate(0, 0, 1)
	if err := w.vendorFile(f, f.Cards, "usim-aes", "VB-STAGE-1", nil); err != nil {
		return err
	}
	if _, err := w.send(w.dropDir("MNOA", "bss", "inbox"), "BSS", "MNOA", native.MSISDNMap, len(f.Cards), true, nil, fleet.MSISDNRecords(f.Cards)); err != nil {
		return err
	}
	if _, err := w.send(w.dropDir("MNOA", "m2m", "inbox"), "M2M", "MNOA", native.SwitchAuthorisation, len(f.Cards), false, nil, fleet.AuthorisationRecords(f.Cards, "MNOB", cut)); err != nil {
		return err
	}
	if _, err := w.send(w.dropDir("MNOB", "m2m", "inbox"), "M2M", "MNOB", native.SwitchRequest, len(f.Cards), false, nil, fleet.SwitchRequestRecords(f.Cards, "MNOA", cut)); err != nil {
		return err
	}
	if err := s.jobs(ctx, [2]string{"MNOA", "inventory"}, [2]string{"MNOA", "msisdn"}, [2]string{"MNOA", "authorisation"}); err != nil {
		return err
	}
	if o.Until == AtSwitchRequest {
		s.job = [2]string{"MNOB", "switch-request"}
		return nil
	}
	if err := s.jobs(ctx, [2]string{"MNOB", "switch-request"}); err != nil {
		return err
	}
	s.job = [2]string{"MNOA", "imsi-list"}
	if o.Until == AtIMSIList {
		return nil
	}
	if err := f.BuildSIMs(); err != nil {
		return err
	}
	sm := smsc.New()
	sm.Now = w.clock
	for _, c := range f.Cards {
		sm.Register(c.MSISDN, c.SIM)
	}
	if err := s.jobs(ctx, [2]string{"MNOA", "imsi-list"}, [2]string{"MNOB", "imsi-result"}); err != nil {
		return err
	}
	if err := s.smscFor(ctx, "MNOA", sm); err != nil {
		return err
	}
	if err := s.jobs(ctx, [2]string{"MNOB", "imsi-result"}, [2]string{"MNOA", "handover"}); err != nil {
		return err
	}
	s.job = [2]string{"MNOB", "handover-in"}
	return nil
}

func (s *Stage) play3b(ctx context.Context, o StageOptions) error {
	w := s.w
	prof := s.profiles["usim-3b"]
	s.fleet = fleet.Options{N: o.Cards, ICCIDBody: "8999902", IMSIBase: "001010000100001", MSISDNBase: "999100000501", Seed: "stage-3b",
		Profile: prof, ListLength: 3, KeyIndexAtReset: true}
	f, err := fleet.New(s.fleet)
	if err != nil {
		return err
	}
	if err := f.BuildSIMs(); err != nil {
		return err
	}
	sm := smsc.New()
	sm.Now = w.clock
	for _, c := range f.Cards {
		sm.Register(c.MSISDN, c.SIM)
	}
	tk, err := w.transportKey("factory")
	if err != nil {
		return err
	}
	wrap := processor.NewTransport(tk)
	for i := 1; i <= 3; i++ {
		if _, err := w.send(w.dropDir("MFR", "factory", "inbox"), "FACTORY", "MFR", native.Inventory, len(f.Cards), true, tk, f.FactoryRecords(wrap, "usim-3b", f.Cards, i)); err != nil {
			return err
		}
	}
	if err := w.vendorFile(f, f.Cards, "usim-3b", "VB-STAGE-3B", nil); err != nil {
		return err
	}
	cut := w.clock().AddDate(0, 0, 1)
	if _, err := w.send(w.dropDir("MNOA", "bss", "inbox"), "BSS", "MNOA", native.MSISDNMap, len(f.Cards), true, nil, fleet.MSISDNRecords(f.Cards)); err != nil {
		return err
	}
	if _, err := w.send(w.dropDir("MNOA", "m2m", "inbox"), "M2M", "MNOA", native.SwitchAuthorisation, len(f.Cards), false, nil, fleet.AuthorisationRecords(f.Cards, "MNOB", cut)); err != nil {
		return err
	}
	if _, err := w.send(w.dropDir("MNOB", "m2m", "inbox"), "M2M", "MNOB", native.SwitchRequest, len(f.Cards), false, nil, fleet.SwitchRequestRecords(f.Cards, "MNOA", cut)); err != nil {
		return err
	}
	if err := s.jobs(ctx, [2]string{"MFR", "card-import"}, [2]string{"MNOA", "inventory"}, [2]string{"MNOA", "msisdn"}, [2]string{"MNOA", "authorisation"},
		[2]string{"MNOB", "switch-request"}, [2]string{"MNOA", "imsi-list"}, [2]string{"MNOB", "imsi-result"}); err != nil {
		return err
	}
	if err := s.smscFor(ctx, "MNOA", sm); err != nil {
		return err
	}
	if err := s.jobs(ctx, [2]string{"MNOB", "imsi-result"}, [2]string{"MNOA", "handover"}, [2]string{"MFR", "key-release-a"}, [2]string{"MNOB", "handover-in"}); err != nil {
		return err
	}
	s.job = [2]string{"MFR", "key-request-b"}
	if o.Until == AtKeyRequest {
		return nil
	}
	if err := s.jobs(ctx, [2]string{"MFR", "key-request-b"}); err != nil {
		return err
	}
	s.job = [2]string{"MNOB", "key-response"}
	return nil
}

// Close stops the SFTP server.
func (s *Stage) Close() { s.w.close() }

// Dir is the folder of the whole world.
func (s *Stage) Dir() string { return s.w.dir }

// Job is the party and job that has the staged input waiting.
func (s *Stage) Job() (party, job string) { return s.job[0], s.job[1] }

// Config is the path of a party's configuration file.
func (s *Stage) Config(party string) string { return s.w.parties[party].cfgPath }

// Env is the secrets the configurations refer to, as KEY=VALUE for a
// child process's environment.
func (s *Stage) Env() []string {
	env := make([]string, 0, len(s.w.env))
	for k, v := range s.w.env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// DropDir is a folder (inbox, outbox, archive, quarantine) of a party's
// local drop (e.g. "smsc", "hlr").
func (s *Stage) DropDir(party, drop, sub string) string { return s.w.dropDir(party, drop, sub) }

// Exchange is a folder on the SFTP server between the parties: inboxes
// are named FROM-to-TO, archives archive/PARTY/FROM.
func (s *Stage) Exchange(parts ...string) string { return s.w.exchangeDir(parts...) }

// Cards makes the staged fleet again with fresh simulated UICCs in their
// factory state (what a test feeds the OTA batches to).
func (s *Stage) Cards() ([]*fleet.Card, error) {
	f, err := fleet.New(s.fleet)
	if err != nil {
		return nil, err
	}
	if err := f.BuildSIMs(); err != nil {
		return nil, err
	}
	return f.Cards, nil
}

// Profile is the cards' OTA profile.
func (s *Stage) Profile() *ota.Profile { return s.fleet.Profile }

// Files lists the names in a folder that are finished files (no .part or
// .tmp), sorted.
func Files(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".part") || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

// Open reads a file the staged parties exchanged: decrypted (as receiver)
// and verified (signed by sender) when it is OpenPGP, as is otherwise.
func (s *Stage) Open(path, sender, receiver string) (io.ReadCloser, error) {
	open := func() (io.ReadCloser, error) { return os.Open(path) }
	if !strings.HasSuffix(path, ".pgp") {
		return open()
	}
	from, to := s.w.keys[sender], s.w.keys[receiver]
	if from == nil || to == nil {
		return nil, fmt.Errorf("stage: no keys for %s or %s", sender, receiver)
	}
	v, err := pgp.Open(open, pgp.DecryptOptions{Keys: []*pgp.Key{to}, Signers: []*pgp.Key{from.Public()}})
	if err != nil {
		return nil, err
	}
	return v.Plaintext()
}

// Seal returns a writer that encrypts to receiver and signs as sender,
// as the staged parties do (compressed with ZLIB when compress is set);
// closing it ends the message, not w.
func (s *Stage) Seal(w io.Writer, sender, receiver string, compress bool) (io.WriteCloser, error) {
	from, to := s.w.keys[sender], s.w.keys[receiver]
	if from == nil || to == nil {
		return nil, fmt.Errorf("stage: no keys for %s or %s", sender, receiver)
	}
	o := pgp.EncryptOptions{}
	if compress {
		o.Compression, o.Level = pgp.CompressZLIB, 9
	}
	return pgp.Encrypt(w, []*pgp.Key{to.Public()}, from, o)
}

// jobs runs the parties' jobs in order, here or through o.Run.
func (s *Stage) jobs(ctx context.Context, steps ...[2]string) error {
	for _, st := range steps {
		if s.pause != nil {
			if err := s.pause(st[0], st[1]); err != nil {
				return err
			}
		}
		if s.run == nil {
			if _, err := s.w.runJob(ctx, st[0], st[1]); err != nil {
				return err
			}
			continue
		}
		if err := s.run(ctx, s.w.parties[st[0]].cfgPath, st[1]); err != nil {
			return fmt.Errorf("%s job %s: %w", st[0], st[1], err)
		}
	}
	return nil
}

// smscFor plays the SMSC on the party's OTA batches, then the party
// reads the report.
func (s *Stage) smscFor(ctx context.Context, code string, sm *smsc.SMSC) error {
	if _, err := s.w.runSMSC(code, sm); err != nil {
		return err
	}
	return s.jobs(ctx, [2]string{code, "ota-report"})
}
