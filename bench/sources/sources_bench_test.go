package sources_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mpsi-dev/mpsi/internal/patients"
	"github.com/mpsi-dev/mpsi/internal/pgtest"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/party/source/fhir"
	"github.com/mpsi-dev/mpsi/party/source/pg"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// The number of patients: MPSI_BENCH_PATIENTS (1000000 for the README
// figures), default 20000 so that a plain -bench run is short.
func size() int {
	if n, err := strconv.Atoi(os.Getenv("MPSI_BENCH_PATIENTS")); err == nil && n > 0 {
		return n
	}
	return 20000
}

const specJSON = `{"id":"bench","parties":["a","b"],"max_set_size":100000000,
"fields":{"given_name":"name","family_name":"name","birth_date":"date","sex":"sex","deceased":"number","condition_codes":"codes"},
"match":{"fields":["given_name","family_name","birth_date","sex"]},"reveal":["cardinality","aggregates"],
"aggregates":[{"name":"dead","kind":"sum","field":"deceased","min":0,"max":1,"from":["a"]},
{"name":"diabetes","kind":"count_if","field":"condition_codes","contains":"44054006","from":["a"]}]}`

type data struct {
	n                        int
	dir                      string
	csv, patients, condition string
	spec                     *session.Spec
}

var (
	once sync.Once
	d    data
	derr error
)

// files writes the generated patients once as CSV and FHIR NDJSON.
func files(b *testing.B) *data {
	once.Do(func() {
		d.n = size()
		people := patients.Generate(d.n, 2026)
		d.dir, derr = os.MkdirTemp("", "mpsi-bench-sources-")
		if derr != nil {
			return
		}
		d.csv = filepath.Join(d.dir, "records.csv")
		d.patients = filepath.Join(d.dir, "Patient.000.ndjson")
		d.condition = filepath.Join(d.dir, "Condition.000.ndjson")
		f, _ := os.Create(d.csv)
		derr = patients.WriteCSV(f, people)
		f.Close()
		pf, _ := os.Create(d.patients)
		cf, _ := os.Create(d.condition)
		if err := patients.WriteFHIR(pf, cf, people); err != nil && derr == nil {
			derr = err
		}
		pf.Close()
		cf.Close()
		d.spec, _ = session.ParseSpec([]byte(specJSON))
	})
	if derr != nil {
		b.Fatal(derr)
	}
	return &d
}

func TestMain(m *testing.M) {
	code := m.Run()
	if d.dir != "" {
		os.RemoveAll(d.dir)
	}
	if srv != nil {
		srv.Stop()
	}
	os.Exit(code)
}

// cpuTime is the CPU time (user + system, all threads) this process has
// used: on a shared, loaded machine, rows per CPU-second measures the cost
// per core where wall-clock rates measure the neighbours too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type clock struct {
	wall time.Time
	cpu  time.Duration
}

func start() clock { return clock{time.Now(), cpuTime()} }

// report gives rows per wall-clock second and per CPU-second (the
// benchmarks run with -cpu 1, so this is rows/s per core).
func report(b *testing.B, rows int, c clock) {
	n := float64(rows) * float64(b.N)
	b.ReportMetric(n/time.Since(c.wall).Seconds(), "rows/s")
	b.ReportMetric(n/(cpuTime()-c.cpu).Seconds(), "rows/cpu-s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkCSV: party.LoadCSV against encoding/csv reading every record.
func BenchmarkCSV(b *testing.B) {
	d := files(b)
	b.Run("floor=encoding-csv", func(b *testing.B) {
		c := start()
		for b.Loop() {
			f, _ := os.Open(d.csv)
			r := csv.NewReader(bufio.NewReader(f))
			r.ReuseRecord = true
			n := 0
			for {
				if _, err := r.Read(); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
				n++
			}
			f.Close()
			if n != d.n+1 {
				b.Fatal(n)
			}
		}
		report(b, d.n, c)
	})
	b.Run("mpsi", func(b *testing.B) {
		c := start()
		for b.Loop() {
			r, err := party.LoadCSV(d.csv, d.spec, "a", party.LoadOptions{})
			if err != nil || r.Report.Rows != d.n {
				b.Fatal(err)
			}
		}
		report(b, d.n, c)
	})
}

// The subset of a Patient and a Condition the spec needs, decoded by
// encoding/json: the least a JSON decode of these files can do.
type floorPatient struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Name         []struct {
		Use    string   `json:"use"`
		Family string   `json:"family"`
		Given  []string `json:"given"`
	} `json:"name"`
	Gender           string `json:"gender"`
	BirthDate        string `json:"birthDate"`
	DeceasedBoolean  *bool  `json:"deceasedBoolean"`
	DeceasedDateTime string `json:"deceasedDateTime"`
}

type floorCondition struct {
	Code struct {
		Coding []struct {
			System string `json:"system"`
			Code   string `json:"code"`
		} `json:"coding"`
	} `json:"code"`
	Subject struct {
		Reference string `json:"reference"`
	} `json:"subject"`
}

func decodeLines[T any](b *testing.B, path string) int {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	n := 0
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return n
}

// BenchmarkNDJSON: the FHIR source (Patient and Condition files) against
// encoding/json decoding every line of both into the needed subset.
func BenchmarkNDJSON(b *testing.B) {
	d := files(b)
	b.Run("floor=encoding-json", func(b *testing.B) {
		c := start()
		for b.Loop() {
			decodeLines[floorCondition](b, d.condition)
			if n := decodeLines[floorPatient](b, d.patients); n != d.n {
				b.Fatal(n)
			}
		}
		report(b, d.n, c)
	})
	b.Run("mpsi", func(b *testing.B) {
		c := start()
		for b.Loop() {
			src, err := fhir.Open(context.Background(), []string{d.patients, d.condition}, nil)
			if err != nil {
				b.Fatal(err)
			}
			r, err := party.ReadRows(src, d.spec, "a", party.LoadOptions{})
			src.Close()
			if err != nil || r.Report.Rows != d.n {
				b.Fatal(err)
			}
		}
		report(b, d.n, c)
	})
}

var (
	srv    *pgtest.Server
	pgOnce sync.Once
	pgErr  error
)

// database starts PostgreSQL once and loads the patients as OMOP tables.
func database(b *testing.B) string {
	if !pgtest.Enabled() {
		b.Skipf("set %s=1 for the PostgreSQL benchmark", pgtest.Env)
	}
	pgOnce.Do(func() {
		if srv, pgErr = pgtest.New(); pgErr != nil {
			return
		}
		ctx := context.Background()
		if pgErr = srv.CreateDB(ctx, "omop"); pgErr != nil {
			return
		}
		c, err := srv.Connect(ctx, "omop")
		if err != nil {
			pgErr = err
			return
		}
		defer c.Close(ctx)
		pgErr = pgtest.LoadOMOP(ctx, c, patients.Generate(size(), 2026))
	})
	if pgErr != nil {
		b.Fatal(pgErr)
	}
	os.Setenv("PGPASSWORD", srv.Password)
	return srv.URL("omop")
}

// BenchmarkPostgres: the pg source (cursor, typed checks, conversion)
// against pgx streaming the same query's rows without converting them.
// rows/cpu-s counts this process only, not the server's work.
func BenchmarkPostgres(b *testing.B) {
	url := database(b)
	d := files(b)
	b.Run("floor=pgx-rows", func(b *testing.B) {
		ctx := context.Background()
		conn, err := srv.Connect(ctx, "omop")
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		c := start()
		for b.Loop() {
			rows, err := conn.Query(ctx, pgtest.OMOPQuery)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for rows.Next() {
				_ = rows.RawValues()
				n++
			}
			if rows.Err() != nil || n != d.n {
				b.Fatal(rows.Err(), n)
			}
		}
		report(b, d.n, c)
	})
	b.Run("mpsi", func(b *testing.B) {
		c := start()
		for b.Loop() {
			src, err := pg.Connect(context.Background(), pg.Config{URL: url, Query: pgtest.OMOPQuery})
			if err != nil {
				b.Fatal(err)
			}
			r, err := party.ReadRows(src, d.spec, "a", party.LoadOptions{})
			src.Close()
			if err != nil || r.Report.Rows != d.n {
				b.Fatal(err)
			}
		}
		report(b, d.n, c)
	})
}

// memSource replays rows held in memory: ReadRows' own cost (mapping,
// normalisation, checks, de-duplication) without any decoding.
type memSource struct {
	cols []string
	rows [][]string
	i    int
}

func (m *memSource) Columns() ([]string, error) { return m.cols, nil }
func (m *memSource) Pos() party.Pos             { return party.Pos{Line: m.i + 1} }
func (m *memSource) Next() ([]string, error) {
	if m.i == len(m.rows) {
		return nil, io.EOF
	}
	m.i++
	return m.rows[m.i-1], nil
}

// BenchmarkPipeline is ReadRows alone, over the CSV's rows decoded in
// advance: what every input pays after its decode.
func BenchmarkPipeline(b *testing.B) {
	d := files(b)
	f, err := os.Open(d.csv)
	if err != nil {
		b.Fatal(err)
	}
	all, err := csv.NewReader(bufio.NewReader(f)).ReadAll()
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	c := start()
	for b.Loop() {
		r, err := party.ReadRows(&memSource{cols: all[0], rows: all[1:]}, d.spec, "a", party.LoadOptions{})
		if err != nil || r.Report.Rows != d.n {
			b.Fatal(err)
		}
	}
	report(b, d.n, c)
}
