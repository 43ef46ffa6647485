package linkage

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/clk"
	"github.com/mpsi-dev/mpsi/psi/link"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// CohortCLKSchema is a clkhash v3 schema over a realistic cohort's
// identifying fields (bigrams of the normalised names and birth date, the
// sex as one token), for [EvaluateCohortCLK].
const CohortCLKSchema = `{"version":3,"clkConfig":{"l":1024,"kdf":{"type":"HKDF","hash":"SHA256","keySize":64}},
"features":[
{"identifier":"given_name","format":{"type":"string","encoding":"utf-8"},"hashing":{"hash":{"type":"doubleHash"},"strategy":{"bitsPerToken":20},"comparison":{"type":"ngram","n":2}}},
{"identifier":"family_name","format":{"type":"string","encoding":"utf-8"},"hashing":{"hash":{"type":"doubleHash"},"strategy":{"bitsPerToken":20},"comparison":{"type":"ngram","n":2}}},
{"identifier":"birth_date","format":{"type":"string","encoding":"utf-8"},"hashing":{"hash":{"type":"doubleHash"},"strategy":{"bitsPerToken":20},"comparison":{"type":"ngram","n":2,"positional":true}}},
{"identifier":"sex","format":{"type":"string","encoding":"utf-8"},"hashing":{"hash":{"type":"doubleHash"},"strategy":{"bitsPerToken":20},"comparison":{"type":"ngram","n":1,"positional":true}}}]}`

// EvaluateCohortCLK links a realistic cohort (bench/cohort with
// Config.Realistic, in dir) in mode clk as a session would: the cohort's
// spec with match set to mode clk, schema and threshold; every party's
// file read by party.LoadCSV with its mapping (the schema's features that
// the spec declares as fields are normalised first); CLKs under one
// random secret; psi/clk's linker. It scores the complete groups against
// truth_groups.csv.
func EvaluateCohortCLK(ctx context.Context, dir string, schema []byte, threshold float64) (Quality, error) {
	var raw map[string]any
	if err := readJSON(filepath.Join(dir, "spec.json"), &raw); err != nil {
		return Quality{}, err
	}
	raw["match"] = map[string]any{"mode": session.ModeCLK, "schema": json.RawMessage(schema), "threshold": threshold}
	raw["aggregation"] = session.AggregationMasked
	b, err := json.Marshal(raw)
	if err != nil {
		return Quality{}, err
	}
	spec, err := session.ParseSpec(b)
	if err != nil {
		return Quality{}, fmt.Errorf("linkage: spec.json in mode clk: %w", err)
	}
	truth, err := readTruthGroups(filepath.Join(dir, cohort.TruthGroupsFile))
	if err != nil {
		return Quality{}, err
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return Quality{}, err
	}
	enc, err := clk.NewEncoder(spec.CLKSchema(), secret[:])
	if err != nil {
		return Quality{}, err
	}
	d := &Dataset{AllParty: allParty(truth, spec.Parties)}
	sets := make([]*clk.Set, len(spec.Parties))
	for p, name := range spec.Parties {
		m, err := party.LoadMapping(filepath.Join(dir, name+".map.json"))
		if err != nil {
			return Quality{}, fmt.Errorf("linkage: %w", err)
		}
		r, err := party.LoadCSV(filepath.Join(dir, name+".csv"), spec, name, party.LoadOptions{Mapping: m})
		if err != nil {
			return Quality{}, fmt.Errorf("linkage: %s.csv: %w", name, err)
		}
		rows := make([][]string, r.Len())
		for i := range rows {
			rows[i] = r.CLKRecord(i)
		}
		clks, err := enc.EncodeAll(ctx, rows, 0)
		if err != nil {
			return Quality{}, err
		}
		if sets[p], err = clk.NewSet(spec.CLKSchema().Bits, clks); err != nil {
			return Quality{}, err
		}
		if err := d.add(name, r, truth[name]); err != nil {
			return Quality{}, err
		}
	}
	lr, err := clk.Link(ctx, sets, clk.LinkOptions{Threshold: threshold})
	if err != nil {
		return Quality{}, err
	}
	res := &link.Result{Completed: []int{0}}
	for _, g := range lr.Groups {
		grp := make([]link.Member, len(g))
		for i, m := range g {
			grp[i] = link.Member{Party: m.Party, Pos: uint32(m.Index)}
		}
		res.Groups = append(res.Groups, grp)
		if len(g) == len(spec.Parties) {
			res.Complete++
		}
	}
	res.Completed[0] = res.Complete
	q, err := Score(res, d.Entity)
	if err != nil {
		return q, err
	}
	q.Entities = d.AllParty
	return q, nil
}
