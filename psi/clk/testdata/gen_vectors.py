#!/usr/bin/env python3
"""Make psi/clk/testdata/vectors.json with clkhash 0.18.3 (not run by CI).

How the committed file was made (see README.md beside this script):

    PYTHONPATH=/tmp/clk16/clkhash-src python3 psi/clk/testdata/gen_vectors.py \
        /work/shared/data/linkage > psi/clk/testdata/vectors.json

where /tmp/clk16/clkhash-src is clkhash's source at tag v0.18.3 and the
interpreter is Debian 12's python3 (3.11.2) with python3-bitarray 2.7.3,
python3-cryptography 38.0.4, python3-jsonschema 4.10.3, python3-tqdm and
python3-mypy-extensions. `pip install clkhash==0.18.3` gives the same code.

The script asks clkhash for each record on its own, so that a record clkhash
refuses is recorded as an error instead of failing the batch.
"""
import base64
import csv
import hashlib
import json
import os
import random
import sys

import clkhash
from clkhash import clk, schema as clkschema

SECRET = "mpsi clk test vectors: not a real secret"

# clkhash reads its version from installed metadata; a source checkout says
# "development". The tag is checked by the command in README.md instead.


def encode(schema_dict, records):
    s = clkschema.from_json_dict(json.loads(json.dumps(schema_dict)))
    out = []
    for r in records:
        try:
            [bf] = clk.generate_clks([r], s, SECRET, validate=True, max_workers=1)
            out.append(base64.b64encode(bf.tobytes()).decode())
        except Exception as e:  # noqa: BLE001 - any refusal is a vector
            out.append({"error": type(e).__name__})
    return out


def kdf(**kw):
    d = {"type": "HKDF"}
    d.update(kw)
    return d


def feat(ident, fmt, comparison, strategy, hash_=None, missing=None):
    h = {"comparison": comparison, "strategy": strategy}
    if hash_ is not None:
        h["hash"] = hash_
    if missing is not None:
        h["missingValue"] = missing
    return {"identifier": ident, "format": fmt, "hashing": h}


def ngram(n, positional=None):
    c = {"type": "ngram", "n": n}
    if positional is not None:
        c["positional"] = positional
    return c


DOUBLE = {"type": "doubleHash"}
DOUBLE_NS = {"type": "doubleHash", "prevent_singularity": True}
BLAKE = {"type": "blakeHash"}

KITCHEN = {
    "version": 3,
    "clkConfig": {"l": 512, "kdf": kdf(hash="SHA512", keySize=32)},
    "features": [
        {"identifier": "rid", "ignored": True},
        feat("name", {"type": "string", "encoding": "utf-8"}, ngram(2), {"bitsPerToken": 10}, DOUBLE),
        feat("name16", {"type": "string", "encoding": "utf-16"}, ngram(3, True), {"bitsPerFeature": 100}, DOUBLE_NS),
        feat("code32", {"type": "string", "encoding": "utf-32"}, {"type": "exact"}, {"bitsPerToken": 5}, DOUBLE),
        feat("upper", {"type": "string", "encoding": "ascii", "case": "upper", "minLength": 1, "maxLength": 10},
             ngram(1), {"bitsPerToken": 4}, BLAKE),
        feat("age", {"type": "integer", "minimum": 0, "maximum": 150},
             {"type": "numeric", "thresholdDistance": 5, "resolution": 2}, {"bitsPerToken": 3}, BLAKE),
        feat("dob", {"type": "date", "format": "%Y-%m-%d"}, ngram(2, True), {"bitsPerFeature": 60}),
        feat("dob2", {"type": "date", "format": "%d %b %Y"}, ngram(1), {"bitsPerToken": 6}, DOUBLE),
        feat("sex", {"type": "enum", "values": ["m", "f", "u"]}, {"type": "exact"}, {"bitsPerToken": 20}, BLAKE,
             missing={"sentinel": "", "replaceWith": "u"}),
        feat("weight", {"type": "string", "pattern": "-?[0-9.e]+"},
             {"type": "numeric", "thresholdDistance": 2.5, "resolution": 3, "fractional_precision": 1},
             {"bitsPerToken": 40}, BLAKE),
        feat("postcode", {"type": "string"}, ngram(2), {"bitsPerToken": 8}, DOUBLE,
             missing={"sentinel": "N/A"}),
        feat("count", {"type": "integer"}, ngram(1, True), {"bitsPerToken": 2}, DOUBLE),
    ],
}

KITCHEN_RECORDS = [
    ["0", "smith", "smith", "AB12", "JOHN", "42", "1970-01-02", "02 Mar 1970", "m", "72.5", "2000", "13"],
    ["1", "", "", "", "X", "0", "2000-02-29", "29 feb 2000", "f", "0", "N/A", " +13"],
    ["2", "Ælfrēd", "Ælfrēd", "ÆØ", "ALFRED", "150", "1999-2-3", "3 MAR 1999", "", "-7.25", "", "007"],
    ["3", "李小龍", "李小龍", "龍", "LEE", "33", "1940-11-27", "27 Nov 1940", "u", "1e2", "N/A", "-5"],
    ["4", "emoji 😀 face", "emoji 😀 face", "😀", "EMOJI", "7", "2021-12-31", "31 Dec 2021", "m", "2.55", "4000", "1_000"],
    ["5", "o'brien-smythe", "o'brien-smythe", "a", "OBRIEN", "149", "1900-01-01", "1 jan 1900", "f", "3.", "0800", "0"],
    # refused by clkhash and by this package
    ["6", "x", "x", "x", "lower", "42", "1970-01-01", "01 Jan 1970", "m", "1", "1", "1"],
    ["7", "x", "x", "x", "X", "151", "1970-01-01", "01 Jan 1970", "m", "1", "1", "1"],
    ["8", "x", "x", "x", "X", "1", "2001-02-29", "01 Jan 1970", "m", "1", "1", "1"],
    ["9", "x", "x", "x", "X", "1", "1970-01-01", "01 Jan 1970", "q", "1", "1", "1"],
    ["10", "x", "x", "x", "TOOLONGVALUE", "1", "1970-01-01", "01 Jan 1970", "m", "1", "1", "1"],
    ["11", "x", "x", "x", "É", "1", "1970-01-01", "01 Jan 1970", "m", "1", "1", "1"],
    ["12", "x", "x", "x", "X", "1", "1970-01-01", "01 Jan 1970", "m", "1", "1", "one"],
    ["13", "x", "x", "x", "X", "1", "1970-01-01x", "01 Jan 1970", "m", "1", "1", "1"],
    ["14", "x", "x", "x", "X", "1", "1970-01-01", "01 Jan 1970", "m", "abc", "1", "1"],
    ["15", "x", "x", "x", "X", "", "1970-01-01", "01 Jan 1970", "m", "1", "1", "1"],
]

# Small l: HMAC-MD5 mod 7 is 0 for about one token in seven, which exercises
# prevent_singularity's re-draw loop; 7 bits also leave padding in the byte.
SINGULAR = {
    "version": 3,
    "clkConfig": {"l": 7, "kdf": kdf(salt="c2FsdA==", info="aW5mbw==")},
    "features": [
        feat("a", {"type": "string"}, ngram(2), {"bitsPerToken": 3}, DOUBLE_NS),
        feat("b", {"type": "string"}, ngram(1, True), {"bitsPerToken": 2}, DOUBLE),
    ],
}

FOLDED = {
    "version": 3,
    "clkConfig": {"l": 256, "xor_folds": 2, "kdf": kdf(hash="SHA256", keySize=64)},
    "features": [
        feat("first", {"type": "string"}, ngram(2), {"bitsPerToken": 30}),
        feat("last", {"type": "string"}, ngram(2, True), {"bitsPerToken": 33}, BLAKE),
        feat("dob", {"type": "date", "format": "%d/%m/%y"}, ngram(1, True), {"bitsPerFeature": 70}, DOUBLE),
    ],
}

ODD = {
    "version": 3,
    "clkConfig": {"l": 1000, "xor_folds": 1, "kdf": kdf()},
    "features": [
        feat("first", {"type": "string", "encoding": "utf-16"}, ngram(2), {"bitsPerToken": 12}, DOUBLE),
        {"identifier": "skip", "ignored": True},
        feat("last", {"type": "string", "encoding": "utf-32"}, ngram(4), {"bitsPerFeature": 300}, DOUBLE_NS),
    ],
}

# Numeric rounding edges: Python's round() is half-to-even and float()
# rounding is IEEE; 2.5 at fractional_precision 0 rounds to a distance
# interval of 2. Also %B/%y dates and exact comparison on an integer.
NUMERIC = {
    "version": 3,
    "clkConfig": {"l": 2048, "kdf": kdf(hash="SHA512", salt="AAECAwQFBgcICQ==", keySize=48)},
    "features": [
        feat("w1", {"type": "string"}, {"type": "numeric", "thresholdDistance": 0.3, "resolution": 2,
                                         "fractional_precision": 1}, {"bitsPerToken": 9}, BLAKE),
        feat("w2", {"type": "string"}, {"type": "numeric", "thresholdDistance": 2.5, "resolution": 1},
             {"bitsPerFeature": 31}, DOUBLE),
        feat("n", {"type": "integer"}, {"type": "exact"}, {"bitsPerToken": 7}, BLAKE),
        feat("d", {"type": "date", "format": "%B %d, %y"}, ngram(2), {"bitsPerToken": 5}, DOUBLE_NS),
    ],
}
NUMERIC_RECORDS = [
    ["0.25", "2.5", "007", "March 1, 01"],
    ["0.35", "3.5", "-0", "september 30, 99"],
    ["2.45", "-2.5", "+12", "FEBRUARY 29, 00"],
    ["-0.05", "1e1", " 13 ", "july 4, 68"],
    ["1e-1", "12345678901234567890", "12345678901234567890123", "July 4, 69"],
    [" 7 ", "0.49999999999999994", "1_000", "May 9, 20"],
    ["+3", ".5", "-42", "December 31, 12"],
    ["", "", "", "January 1, 70"],
    ["1.15", "7.", "0", "June 10, 45"],
    ["-1.25", "-1.5", "5", "February 29, 01"],  # not a leap year: refused
    ["nan", "1", "1", "June 10, 45"],  # refused
    ["1", "1", "1.5", "June 10, 45"],  # not an integer: refused
]

NAMES = ["anna", "bob", "chloé", "dmitri", "eve", "fátima", "gōng", "hannah", "ivan", "józef", "", "kim", "ly",
         "o'neil", "mc donald", "ñandú", "zoë", "ß", "straße", "x"]


def synthetic(rng, n, cols):
    out = []
    for _ in range(n):
        row = []
        for c in cols:
            if c == "name":
                row.append(rng.choice(NAMES) + rng.choice(["", "", "a", "ey"]))
            elif c == "date2":
                row.append("%02d/%02d/%02d" % (rng.randint(1, 28), rng.randint(1, 12), rng.randint(0, 99)))
            elif c == "skip":
                row.append(str(rng.random()))
        out.append(row)
    return out


def read_rows(path, n):
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        next(r)
        return [row for _, row in zip(range(n), r)]


def main():
    data = sys.argv[1]
    rng = random.Random(16)
    cases = []
    five = json.load(open(os.path.join(data, "anonlink_5party", "schema.json")))
    rows = []
    for i in range(1, 6):
        rows += read_rows(os.path.join(data, "anonlink_5party", f"dataset-{i}.csv"), 60)
    cases.append({"name": "anonlink_5party", "schema": five, "records": rows})
    abc = json.load(open(os.path.join(data, "anonlink_abc", "schema_ABC.json")))
    cases.append({"name": "anonlink_abc_alice", "schema": abc,
                  "records": read_rows(os.path.join(data, "anonlink_abc", "dataset-alice.csv"), 40)})
    cases.append({"name": "kitchen_sink", "schema": KITCHEN, "records": KITCHEN_RECORDS})
    cases.append({"name": "numeric_edges", "schema": NUMERIC, "records": NUMERIC_RECORDS})
    cases.append({"name": "singular_l7", "schema": SINGULAR,
                  "records": [[a, b] for a, b in zip(NAMES, reversed(NAMES))]})
    cases.append({"name": "xor_folded", "schema": FOLDED,
                  "records": [r[:2] + [s[0]] for r, s in zip(synthetic(rng, 30, ["name", "name"]),
                                                            synthetic(rng, 30, ["date2"]))]})
    cases.append({"name": "odd_length", "schema": ODD, "records": synthetic(rng, 30, ["name", "skip", "name"])})
    for c in cases:
        c["clks"] = encode(c["schema"], c["records"])

    # Keyed, salted BLAKE2b straight from hashlib, for the primitive itself.
    prims = []
    for key_len, salt, msg in [(64, b"0", b""), (64, b"1", b"ab"), (17, b"", b"x" * 200), (1, b"9" * 16, b"y" * 128)]:
        key = bytes(range(key_len))
        prims.append({"key": key.hex(), "salt": salt.hex(), "msg": msg.hex(),
                      "digest": hashlib.blake2b(msg, key=key, salt=salt).hexdigest()})
    json.dump({"generator": "psi/clk/testdata/gen_vectors.py", "clkhash": "0.18.3",
               "python": sys.version.split()[0], "secret": SECRET, "cases": cases, "blake2b": prims},
              sys.stdout, ensure_ascii=False, indent=None, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
