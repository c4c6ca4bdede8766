#!/usr/bin/env python3
"""Regenerate the reference data shipped in this directory.

Usage: python3 derive.py [SOURCE_DIR]

SOURCE_DIR holds hs2022.csv, country-codes.csv, unlocode.csv and
tir-territories.csv; it defaults to
../../../../shared/data relative to this script. Output is written next to this
script. Python 3 standard library only; output is deterministic (sorted, "\n"
line endings, minimal quoting).
"""

import csv
import os
import re
import sys

FUNCTION = re.compile(r"[-0-9A-Z]{8}")
TWO_LETTERS = re.compile(r"[A-Z]{2}")
HERE = os.path.dirname(os.path.abspath(__file__))


def read_rows(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def clean(text):
    # The Rust reader is line based, so a field must never span lines.
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


def write_rows(name, header, rows):
    path = os.path.join(HERE, name)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        w.writerow(header)
        w.writerows(rows)
    print(f"{name}: {len(rows)} rows")


def hs_subheadings(src):
    rows = []
    for r in read_rows(os.path.join(src, "hs2022.csv")):
        code = r["hscode"].strip()
        # Level 6 only; chapter 99 / TOTAL rows are UN Comtrade additions, not HS.
        if r["level"].strip() != "6" or r["section"].strip() == "TOTAL":
            continue
        if code.startswith("99"):
            continue
        if len(code) != 6 or not code.isdigit():
            sys.exit(f"hs2022.csv: unexpected level-6 code {code!r}")
        rows.append((code, clean(r["description"])))
    rows.sort()
    if len({c for c, _ in rows}) != len(rows):
        sys.exit("hs2022.csv: duplicate subheading")
    return rows


def countries(src):
    rows = []
    for r in read_rows(os.path.join(src, "country-codes.csv")):
        alpha2 = r["ISO3166-1-Alpha-2"].strip()
        if not alpha2:
            continue
        alpha3 = r["ISO3166-1-Alpha-3"].strip()
        name = clean(r["official_name_en"]) or clean(r["CLDR display name"])
        # Several currencies are listed comma-separated; the first is the main one.
        currency = r["ISO4217-currency_alphabetic_code"].split(",")[0].strip()
        rows.append((alpha2, alpha3, name, currency))
    rows.sort()
    return rows


def border_crossings(src):
    rows = []
    for r in read_rows(os.path.join(src, "unlocode.csv")):
        function = r["function"]
        # Function position 8 (1-based) = "B": border crossing point. Rows whose
        # columns were shifted by an unquoted comma have no 8-char function.
        if not FUNCTION.fullmatch(function) or function[7] != "B":
            continue
        rows.append(
            (
                r["country"].strip(),
                r["location"].strip(),
                clean(r["nameWoDiacritics"]) or clean(r["name"]),
                r["status"].strip(),
                r["lat"].strip(),
                r["lon"].strip(),
            )
        )
    rows.sort()
    return rows


def tir_territories(src):
    rows = []
    for r in read_rows(os.path.join(src, "tir-territories.csv")):
        territory, country = r["territory"].strip(), r["country"].strip()
        if not (TWO_LETTERS.fullmatch(territory) and TWO_LETTERS.fullmatch(country)):
            sys.exit(f"tir-territories.csv: unexpected row {r!r}")
        rows.append((territory, country, clean(r["name"])))
    # By territory, then name: the source's own order, so the copy is identical.
    rows.sort(key=lambda row: (row[0], row[2]))
    if len({c for _, c, _ in rows}) != len(rows):
        sys.exit("tir-territories.csv: a country listed twice")
    return rows


def main():
    default = os.path.join(HERE, "..", "..", "..", "..", "shared", "data")
    src = sys.argv[1] if len(sys.argv) > 1 else default
    write_rows("hs2022-subheadings.csv", ("hscode", "description"), hs_subheadings(src))
    write_rows("countries.csv", ("alpha2", "alpha3", "name", "currency"), countries(src))
    write_rows(
        "border-crossings.csv",
        ("country", "location", "name", "status", "lat", "lon"),
        border_crossings(src),
    )
    write_rows("tir-territories.csv", ("territory", "country", "name"), tir_territories(src))


if __name__ == "__main__":
    main()
