package clk_test

import (
	"context"
	"fmt"
	"log"

	"github.com/mpsi-dev/mpsi/psi/clk"
)

const exampleSchema = `{
  "version": 3,
  "clkConfig": {"l": 1024, "kdf": {"type": "HKDF", "hash": "SHA256",
    "salt": "SCbL2zHNnmsckfzchsNkZY9XoHk96P/G5nUBrM7ybymlEFsMV6PAeDZCNp3rfNUPCtLDMOGQHG4pCQpfhiHCyA==",
    "info": "c2NoZW1hX2V4YW1wbGU=", "keySize": 64}},
  "features": [
    {"identifier": "id", "ignored": true},
    {"identifier": "givenname", "format": {"type": "string"},
     "hashing": {"hash": {"type": "doubleHash"}, "strategy": {"bitsPerToken": 30},
                 "comparison": {"type": "ngram", "n": 2}}},
    {"identifier": "surname", "format": {"type": "string"},
     "hashing": {"hash": {"type": "doubleHash"}, "strategy": {"bitsPerToken": 30},
                 "comparison": {"type": "ngram", "n": 2}}},
    {"identifier": "dob", "format": {"type": "date", "format": "%d-%m-%Y"},
     "hashing": {"strategy": {"bitsPerToken": 20},
                 "comparison": {"type": "ngram", "n": 2, "positional": true}}}
  ]
}`

// Three parties encode their records with the shared secret; the linker
// groups the CLKs of the same person despite the typos.
func Example() {
	schema, err := clk.ParseSchema([]byte(exampleSchema))
	if err != nil {
		log.Fatal(err)
	}
	enc, err := clk.NewEncoder(schema, []byte("secret agreed by the parties"))
	if err != nil {
		log.Fatal(err)
	}
	parties := [][][]string{
		{{"a1", "oliver", "paciorek", "10-02-1959"}, {"a2", "zali", "verner", "22-12-1972"}},
		{{"b1", "zali", "vemrer", "22-12-1972"}, {"b2", "amy", "lodge", "16-01-1958"}},
		{{"c1", "oliyer", "paciorwk", "10-02-1959"}, {"c2", "zal", "verner", "22-12-1972"}},
	}
	var sets []*clk.Set
	for _, records := range parties {
		clks, err := enc.EncodeAll(context.Background(), records, 1)
		if err != nil {
			log.Fatal(err)
		}
		set, err := clk.NewSet(schema.Bits, clks)
		if err != nil {
			log.Fatal(err)
		}
		sets = append(sets, set)
	}
	res, err := clk.Link(context.Background(), sets, clk.LinkOptions{Threshold: 0.75})
	if err != nil {
		log.Fatal(err)
	}
	for _, g := range res.Groups {
		fmt.Println(g)
	}
	// Output:
	// [{0 0} {2 0}]
	// [{0 1} {1 0} {2 1}]
}
