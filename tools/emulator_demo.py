"""`make demo-emulator`: start the emulated org, run a sync-shaped scenario through simple-salesforce, stop.

The emulator runs as its own process through the `sf-emulator` command, exactly as a
user would start it; this script talks to it only over HTTPS, with simple-salesforce
for REST and Bulk API 2.0, and SOAP envelopes for convertLead and merge (which
simple-salesforce has no call for). Every step prints what it saw and the API calls it
cost, read from the Sforce-Limit-Info header Salesforce puts on every response.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from simple_salesforce import Salesforce

from sf_emulator.soap import convert_lead_envelope, merge_envelope, parse_results

OBJECTS = [
    "User",
    "Account",
    "Contact",
    "Lead",
    "Opportunity",
    "OpportunityContactRole",
    "Campaign",
    "CampaignMemberStatus",
    "CampaignMember",
    "Task",
    "Event",
    "Subscription__c",
]


class Demo:
    def __init__(self, info: dict[str, str]) -> None:
        self.info = info
        self.http = requests.Session()
        self.http.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace our CA
        self.http.verify = info["ca_file"]
        token = self.http.post(
            f"{info['url']}/services/oauth2/token",
            timeout=30,
            data={
                "grant_type": "client_credentials",
                "client_id": info["client_id"],
                "client_secret": info["client_secret"],
            },
        ).json()
        self.sf = Salesforce(
            instance_url=token["instance_url"], session_id=token["access_token"], session=self.http
        )
        self.used = self.usage()

    def usage(self) -> int:
        """API calls counted so far, read from the emulator's accounting (an admin call, not counted)."""
        return int(self.http.get(f"{self.info['url']}/__emulator__/usage", timeout=30).json()["api_calls"])

    def step(self, title: str, detail: str) -> None:
        now = self.usage()
        cost, self.used = now - self.used, now
        print(f"  {title:<50} {detail:<46} {cost:>4} API call{'s' if cost != 1 else ''}")

    def soap(self, envelope: str, action: str) -> list[dict[str, Any]]:
        response = self.http.post(
            f"{self.info['url']}/services/Soap/u/59.0",
            data=envelope.encode(),
            headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": action},
            timeout=30,
        )
        return parse_results(response.text)


def run(info: dict[str, str]) -> None:
    demo = Demo(info)
    sf = demo.sf
    print(f"\nOrg at {info['url']} (sync user {info['username']})\n")
    print("1. First copy: every object the sync user can see")
    counts: dict[str, int] = {}
    watermark = ""
    for name in OBJECTS:
        rows = sf.query_all(f"SELECT Id, SystemModstamp FROM {name}")["records"]
        counts[name] = len(rows)
        watermark = max([watermark, *(r["SystemModstamp"] for r in rows)])
        demo.step(f"REST query {name}", f"{len(rows):>6} records, pages of 2,000")
    pages = list(sf.bulk2.Lead.query("SELECT Id, Email, Company FROM Lead", max_records=2000))
    bulk_rows = sum(max(p.count("\n") - 1, 0) for p in pages)
    demo.step("Bulk API 2.0 query Lead", f"{bulk_rows:>6} records in {len(pages)} CSV pages")
    print(f"  watermark (max SystemModstamp) = {watermark}\n")

    print("2. Changes made in Salesforce")
    leads = sf.query("SELECT Id FROM Lead WHERE IsConverted = false ORDER BY Id LIMIT 6")["records"]
    for lead in leads[:3]:
        sf.Lead.update(lead["Id"], {"Title": "Director of Demos"})
    demo.step("REST update 3 leads", "Title = 'Director of Demos'")
    created = sf.restful(
        "composite/sobjects",
        method="POST",
        data=json.dumps(
            {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": "Lead"},
                        "LastName": "Newcomer",
                        "Company": "Demo Co",
                        "Email": "new@demo.example",
                    },
                    {
                        "attributes": {"type": "Lead"},
                        "LastName": "Invalid",
                        "Company": "Demo Co",
                        "Email": "not-an-email",
                    },
                ],
            }
        ),
    )
    errors = [e["statusCode"] for r in created for e in r["errors"]]
    demo.step(
        "Collections create 2 leads (1 invalid)", f"ok={sum(r['success'] for r in created)} rejected={errors}"
    )
    sf.Lead.delete(leads[3]["Id"])
    demo.step("REST delete 1 lead", leads[3]["Id"])
    contacts = sf.query("SELECT Id FROM Contact ORDER BY Id LIMIT 2")["records"]
    merged = demo.soap(
        merge_envelope(sf.session_id, "Contact", contacts[0]["Id"], [contacts[1]["Id"]]), "merge"
    )
    demo.step("SOAP merge 2 contacts", f"success={merged[0]['success']} loser={contacts[1]['Id']}")
    converted = demo.soap(
        convert_lead_envelope(
            sf.session_id, [{"leadId": leads[4]["Id"], "convertedStatus": "Closed - Converted"}]
        ),
        "convertLead",
    )
    demo.step("SOAP convertLead 1 lead", f"contact={converted[0]['contactId']}")
    print()

    print("3. Incremental pull: only what changed since the watermark")
    stamp = (
        datetime.strptime(watermark, "%Y-%m-%dT%H:%M:%S.%f%z").strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    )
    for name in ("Lead", "Contact", "Account", "Opportunity", "CampaignMember", "Task"):
        rows = sf.query_all(f"SELECT Id FROM {name} WHERE SystemModstamp > {stamp}")["records"]
        demo.step(f"REST query {name} SystemModstamp > watermark", f"{len(rows):>6} changed")
    print()

    print("4. Deletes and merges since the watermark")
    for name in ("Lead", "Contact"):
        rows = sf.query_all(
            f"SELECT Id, MasterRecordId FROM {name} WHERE IsDeleted = true AND SystemModstamp > {stamp}",
            include_deleted=True,
        )["records"]
        merges = sum(1 for r in rows if r["MasterRecordId"])
        demo.step(f"queryAll deleted {name}", f"{len(rows)} deleted, {merges} of them merge losers")
    # getDeleted covers whole minutes only, so move the org's clock past the minute of the delete.
    demo.http.post(f"{info['url']}/__emulator__/clock", json={"advance": 60}, timeout=30)
    now = datetime.now(UTC) + timedelta(minutes=1)
    gone = sf.Lead.deleted(now - timedelta(hours=1), now)
    demo.step("getDeleted Lead (last hour)", f"{len(gone['deletedRecords'])} ids")
    print()

    print("5. Live counts now, through COUNT()")
    for name in ("Lead", "Contact", "Account"):
        live = sf.query(f"SELECT COUNT() FROM {name}")["totalSize"]
        demo.step(f"COUNT() {name}", f"{counts[name]:>6} at first copy, {live:>6} now")
    used = sf.api_usage["api-usage"]
    print(f"\nAPI usage today (Sforce-Limit-Info header of the last response): {used.used} of {used.total}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=5000, help="size of the seeded org")
    args = parser.parse_args()
    command = [
        str(Path(sys.executable).with_name("sf-emulator")),
        "--port",
        "0",
        "--seed",
        str(args.seed),
        "--json",
    ]
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            print("sf-emulator did not start", file=sys.stderr)
            return 1
        info = json.loads(line)
        print(f"sf-emulator started and seeded {args.seed} records in {time.monotonic() - started:.1f} s")
        run(info)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        print("\nsf-emulator stopped.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
