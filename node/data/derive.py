#!/usr/bin/env python3
"""Derives the reference tables embedded in the binary from ANPR's published tables.

Run by hand when ANPR publishes new tables; the build and the tests never run it.

    python3 node/data/derive.py ANPR_DIR

ANPR_DIR holds anpr_archivio_comuni.csv (the archive of every Italian comune since 1861) and
stati_esteri_cessati.csv (foreign states that no longer exist). Writes:

- node/data/comuni_belfiore.csv: every Belfiore (cadastral) code a comune ever had, with the first
  day and the last day it was in use and its latest name. A codice fiscale keeps its birth
  place's code for life, so codes of comuni since merged or renamed stay valid.
- node/data/stati_esteri_cessati.csv: copied as it is.
"""

import csv
import pathlib
import shutil
import sys


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: derive.py ANPR_DIR")
    src = pathlib.Path(sys.argv[1])
    out = pathlib.Path(__file__).resolve().parent

    codes: dict[str, list[str]] = {}
    with open(src / "anpr_archivio_comuni.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            code = row["CODCATASTALE"]
            # "ND": comuni of the 19th century that never had a code.
            if len(code) != 4 or not code[0].isalpha() or not code[1:].isdigit():
                continue
            first, last, name = row["DATAISTITUZIONE"], row["DATACESSAZIONE"], row["DENOMINAZIONE_IT"]
            seen = codes.get(code)
            if seen is None:
                codes[code] = [first, last, name]
                continue
            seen[0] = min(seen[0], first)
            if last >= seen[1]:
                seen[1], seen[2] = last, name

    with open(out / "comuni_belfiore.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["codice_catastale", "dal", "al", "denominazione"])
        for code in sorted(codes):
            w.writerow([code, *codes[code]])
    shutil.copyfile(src / "stati_esteri_cessati.csv", out / "stati_esteri_cessati.csv")
    print(f"{len(codes)} Belfiore codes of comuni written to {out / 'comuni_belfiore.csv'}")


if __name__ == "__main__":
    main()
