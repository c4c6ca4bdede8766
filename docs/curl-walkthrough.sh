#!/usr/bin/env bash
# A full TIR transport BY -> LT -> PL against `tirhub demo`, with curl: from Belarus
# into the Union at Medininkai (the Union is one TIR territory, so a transport must
# cross its border to be a TIR transport).
# Export the tokens `tirhub demo` printed: CHAIN, HOLDER (LTU/012/345), BY, LT, PL.
set -euo pipefail
URL=${URL:-http://127.0.0.1:8080}
# XH, a 3-digit series and six digits (binding v2), from the clock: a new one every second.
REF=${REF:-XH$(( $(date +%s) % 900000000 + 100000000 ))}
send() { # token, JSON body
  curl -sS -X POST "$URL/v1/messages" -H "Authorization: Bearer $1" \
       -H 'Content-Type: application/json' -d "$2"; echo; }

# E1: the guarantee chain registers a guarantee for the holder.
send "$CHAIN" '{"message_id":"'$REF'-1","type":"E1","guarantee_reference":"'$REF'","holder":"LTU/012/345"}'

# E9: the holder sends the advance data (forwarded to customs of BY as an E9 notification).
send "$HOLDER" '{"message_id":"'$REF'-2","type":"E9","guarantee_reference":"'$REF'","declaration":{
  "itinerary":["BY","LT","PL"],
  "offices":[{"code":"BYSIM001","role":"departure"},{"code":"LTMDK001","role":"entry"},{"code":"PLKUB001","role":"destination"}],
  "vehicle":{"registration":"LRT123","country":"LT"},
  "seals":["BY-884211"],
  "consignments":[{"consignor":{"name":"Minsk Exports","country":"BY"},"consignee":{"name":"Bialystok Imports","country":"PL"},
    "goods":[{"hs_code":"870323","description":"Passenger cars","packages":4,"gross_mass_kg":6200.0,
              "value":{"amount":88000.0,"currency":"EUR"}}]}]}}'

# I1 + I7: customs of departure accept the guarantee and record the declaration.
send "$BY" '{"message_id":"'$REF'-3","type":"I1","guarantee_reference":"'$REF'","office":"BYSIM001"}'
send "$BY" '{"message_id":"'$REF'-4","type":"I7","guarantee_reference":"'$REF'","office":"BYSIM001"}'

# Binding v2: one TIR operation per TIR territory, so BY -> LT -> PL is two operations:
# 1 in BY (departure at Kamenny Log, exit at the same crossing), 2 in the EU (LT, PL:
# entry at Medininkai, the other side of that crossing, destination at Kuznica).
# Operation 1 in BY: started at the office of departure, terminated at the office of exit.
send "$BY" '{"message_id":"'$REF'-5","type":"I9","guarantee_reference":"'$REF'","office":"BYSIM001","seals":["BY-884211"],
  "operation_id":"26BY00000000000042","controls":[{"type":"documentary","result":"satisfactory"}]}'
send "$BY" '{"message_id":"'$REF'-6","type":"I11","guarantee_reference":"'$REF'","office":"BYSIM001","seals":["BY-884211"],"reservations":[]}'
# Operation 2 in the EU: started by customs of LT at the office of entry (customs of LT
# and PL were told in I15 that operation 1 terminated), terminated by customs of PL at
# the office of destination. Nothing is sent in PL on entry: LT and PL are one territory.
send "$LT" '{"message_id":"'$REF'-7","type":"I9","guarantee_reference":"'$REF'","office":"LTMDK001","seals":["BY-884211"],
  "operation_id":"26LT00000000001234","controls":[{"type":"seal_check","result":"satisfactory","remarks":"seal intact"}]}'
send "$PL" '{"message_id":"'$REF'-8","type":"I11","guarantee_reference":"'$REF'","office":"PLKUB001","seals":["BY-884211"],"reservations":[]}'
# I13: each operation is discharged by customs of the country where it terminated;
# after the last one the guarantee is released.
send "$BY" '{"message_id":"'$REF'-9","type":"I13","guarantee_reference":"'$REF'","office":"BYSIM001"}'
send "$PL" '{"message_id":"'$REF'-10","type":"I13","guarantee_reference":"'$REF'","office":"PLKUB001"}'

# E5: the chain reads the guarantee: state "released", two operations (BY, EU) "discharged".
curl -sS "$URL/v1/guarantees/$REF" -H "Authorization: Bearer $CHAIN"; echo
# E7: the chain's notification feed; I15: what customs of PL were told.
curl -sS "$URL/v1/notifications?after=0&limit=100" -H "Authorization: Bearer $CHAIN"; echo
curl -sS "$URL/v1/notifications" -H "Authorization: Bearer $PL"; echo
