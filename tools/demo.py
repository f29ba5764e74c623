"""`make demo`: the sync on the local stack, end to end, with no AWS account and no Salesforce org.

What runs: DynamoDB Local (the jar from npm, on the machine's Java), moto's executing Step
Functions interpreter running the real statemachine/sync_cycle.asl.json, the real Lambda
handlers (in-process), and the emulated Salesforce org over HTTPS. The EventBridge rule is
fired as AWS would fire it; each cycle runs Plan -> Map of per-object slices -> Finish ->
Wait, and the demo holds the Wait (five minutes when deployed) to change leads in Salesforce
before letting the chain hand over to the next cycle. It ends by operating the stack with the
``sfsync`` CLI, run in its own process as an operator would (``sfsync --local``): status (with the
first copy's progress bars, taken while it runs), a refused record in ``errors``, a person's history,
pause (twice: the second is refused) and resume, a resync of Account and a sync-now. It stops
everything it started.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
import warnings
from contextlib import redirect_stdout
from io import StringIO
from typing import Any

import requests

from sf_emulator.app import Emulator
from sf_emulator.seed import seed
from sf_emulator.server import EmulatorServer
from sfsync.adapters.dynamo import PeopleRepository, StateRepository
from sfsync.adapters.records import RecordsRepository
from sfsync.domain.people import person_id_for
from sfsync_local.dynamodb_local import DynamoDBLocal
from sfsync_local.expected import RECORD_OBJECTS, salesforce_people, salesforce_records
from sfsync_local.gate import CycleGate
from sfsync_local.http_api import HttpApiServer
from sfsync_local.operator_endpoint import OperatorEndpoint
from sfsync_local.stack import REPO_ROOT, LocalStack

FILTER = "Sync_To_Marketing__c"
CUSTOM = ("Subscription__c",)

OUT = sys.stdout  # the demo's own report; the functions' log lines are kept off the terminal


def say(*parts: Any) -> None:
    print(*parts, file=OUT, flush=True)


def salesforce_counts(server: EmulatorServer) -> dict[str, int]:
    """Live records the sync user sees, per object; people less converted leads (their person is the
    contact's) and less those the sync filter turns away."""
    kinds = list(salesforce_people(server.emulator, filter_field=FILTER).values())
    counts = {name: kinds.count(name) for name in ("Lead", "Contact")}
    for sobject in (*RECORD_OBJECTS, *CUSTOM):
        counts[sobject] = len(salesforce_records(server.emulator, sobject))
    return counts


def marketing_counts(
    people: PeopleRepository, records: RecordsRepository, kept: set[str]
) -> tuple[dict[str, int], int, int]:
    """Live people per type and records per object; ``kept``: people the filter stopped updating
    (still in the marketing database, no longer expected from Salesforce)."""
    counts = {"Lead": 0, "Contact": 0}
    deleted = aliases = 0
    for person in people.iterate():
        if person.alias_of:
            aliases += 1
        elif person.fields.get("sfdc_is_deleted"):
            deleted += 1
        elif person.sf_type in counts and person.sf_id and person.sf_id not in kept:
            counts[person.sf_type] += 1
    for record in records.iterate():
        if not record.is_deleted:
            counts[record.sobject] = counts.get(record.sobject, 0) + 1
    return counts, deleted, aliases


def report(
    number: int,
    state: StateRepository,
    stores: tuple[PeopleRepository, RecordsRepository],
    server: EmulatorServer,
    seconds: float,
    kept: set[str],
) -> bool:
    """Print the cycle's record and every object's count on both sides; whether all are equal."""
    [run] = state.recent_cycles(1)
    say(
        f"\nCycle {number} ({run.cycle_id}): {run.status}, {seconds:.1f} s; plan asked Salesforce in "
        f"{run.plan_api_calls} call(s), unchanged: {', '.join(run.unchanged) or '-'}"
    )
    for stats in run.stats:
        say(
            f"  {stats['sobject']:<22} created {stats['created']:>5}  updated {stats['updated']:>3}  "
            f"deleted {stats['deleted']:>3}  merged {stats['merged']:>2}  converted {stats['converted']:>2}  "
            f"filtered {stats['filtered']:>3}  unchanged {stats['skipped']:>3}  "
            f"pushed {stats.get('pushed', 0):>3}  refused {stats.get('push_failed', 0):>2}  "
            f"in {stats['slices']} slice(s), {stats['api_calls']} API calls"
        )
    if run.status != "SUCCEEDED":
        say(
            "  not everything synced: its Step Functions execution ends FAILED once it has handed over "
            "(red in the console, the alarms count it); the chain goes on"
        )
    for result in run.results:
        if result.get("status") != "drained":
            cause = str(result.get("cause") or "")[:300]
            say(f"  {result['object']}: {result['status']} ({result.get('error')}: {cause})")
    mine, deleted, aliases = marketing_counts(*stores, kept)
    theirs = salesforce_counts(server)
    equal = True
    for name, count in theirs.items():
        mark = "equal" if mine.get(name, 0) == count else "DIFFERENT"
        equal = equal and mark == "equal"
        say(f"  {name:<22} Salesforce {count:>5}   marketing {mine.get(name, 0):>5}   -> {mark}")
    say(
        f"  people marked deleted in Salesforce: {deleted}; merged or converted identities kept as pointers: "
        f"{aliases}; people the filter stopped updating: {len(kept)}"
    )
    return equal


def sfsync(*args: str) -> int:
    """Run the operator CLI as an operator would, in its own process: ``sfsync --local ARGS`` (it finds
    the local stack by .sfsync-local.json, which the demo's operator endpoint wrote)."""
    path = os.pathsep.join([str(REPO_ROOT / "tools"), str(REPO_ROOT / "layers" / "core")])
    env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "150", "TERM": "dumb"}
    done = subprocess.run(
        [sys.executable, "-m", "sfsync_cli", "--local", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    say(f"\n$ sfsync --local {' '.join(args)}")
    say((done.stdout + done.stderr).rstrip())
    return done.returncode


def copying(state: StateRepository, sobject: str, timeout: float = 120) -> None:
    """Wait until the first copy of ``sobject`` has stored a slice (its cursor counts one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cursor = state.cursor(sobject)
        if cursor is not None and cursor.slices > 0:
            return
        time.sleep(0.05)


def operate(
    gate: CycleGate,
    state: StateRepository,
    server: EmulatorServer,
    stores: Any,
    kept: set[str],
    ids: list[str],
) -> bool:
    """The operator's commands on the running stack, through the sfsync CLI."""
    say("\nOperating it with the sfsync CLI (the operator Lambda of the local stack):")
    sfsync("status")
    refused = sfsync("errors")
    sfsync("history", ids[41])
    paused = sfsync("pause") == 0 and state.is_paused()
    twice = sfsync("pause") != 0  # refused, named, nothing changed
    resumed = sfsync("resume") == 0 and not state.is_paused()
    sfsync("resync", "Account")
    resynced = state.watermark("Account") is None and state.watermark("Lead") is not None
    t0 = time.monotonic()
    sfsync("sync-now")  # the waiting chain is stopped and replaced by a cycle that runs now
    gate.reached()
    equal = report(6, state, stores, server, time.monotonic() - t0, kept)
    [run] = state.recent_cycles(1)
    account = next((s for s in run.stats if s["sobject"] == "Account"), {})
    reread = sum(account.get(k, 0) for k in ("created", "updated", "skipped"))
    say(
        f"  the resync read all {reread} accounts again (a first copy: stored in place, readable "
        "throughout); the other objects kept their watermarks"
    )
    sfsync("status")
    accounts = len(salesforce_records(server.emulator, "Account"))
    ok = refused == 0 and paused and twice and resumed and resynced and reread >= accounts
    say(f"  operator commands did what they said: {ok}")
    return equal and ok


def act(stack: LocalStack, request: dict[str, Any]) -> dict[str, Any]:
    """One marketing-side request, through the actions Lambda (as the marketing application would)."""
    answer: dict[str, Any] = stack.invoke("ActionsFunction", request)
    return answer


def two_way(
    stack: LocalStack,
    gate: CycleGate,
    server: EmulatorServer,
    people: PeopleRepository,
    state: StateRepository,
    stores: tuple[PeopleRepository, RecordsRepository],
    kept: set[str],
    lead_ids: list[str],
) -> bool:
    """Marketing and Salesforce both edit people between cycles; one field on both sides, for a lead
    (marketing wins) and a contact (Salesforce wins); a new marketing person is synced by the action."""
    emu, admin = server.emulator, server.emulator.admin_user_id
    leads = [i for i in lead_ids[60:120] if i not in kept and people.get(person_id_for(i))][:21]
    contacts = sorted(
        p.sf_id for p in people.iterate() if p.sf_type == "Contact" and p.alias_of is None and p.sf_id
    )[30:41]
    for lead_id in leads[1:]:
        act(
            stack,
            {
                "action": "update_person",
                "person_id": person_id_for(lead_id),
                "values": {"notes": "Met at the demo event"},
            },
        )
    for contact_id in contacts[1:]:
        act(
            stack,
            {"action": "update_person", "person_id": person_id_for(contact_id), "values": {"city": "Lisbon"}},
        )
    both = {("Lead", leads[0]): "marketing", ("Contact", contacts[0]): "salesforce"}
    for (sobject, record_id), _ in both.items():
        act(
            stack,
            {
                "action": "update_person",
                "person_id": person_id_for(record_id),
                "values": {"job_title": "Set in marketing"},
            },
        )
        emu.org.update(sobject, record_id, {"Title": "Set in Salesforce"}, admin)
    refused = next(i for i in lead_ids[130:] if i not in kept and people.get(person_id_for(i)))
    act(
        stack,
        {"action": "update_person", "person_id": person_id_for(refused), "values": {"job_title": "T" * 200}},
    )  # Salesforce's Title holds 128 characters: this push is refused, and shown by `sfsync errors`
    new_person = act(
        stack, {"action": "create_person", "values": {"email": "ana.silva@demo.example", "first_name": "Ana"}}
    )["person_id"]
    synced = act(stack, {"action": "sync_person", "person_id": new_person})
    webinar = act(
        stack, {"action": "create_campaign", "name": "Demo webinar", "statuses": ["Registered", "Attended"]}
    )
    joined = act(
        stack,
        {
            "action": "add_to_campaign",
            "person_id": new_person,
            "campaign_id": webinar["campaign_id"],
            "status": "Attended",
        },
    )
    spare = next(i for i in lead_ids[120:] if i not in kept and people.get(person_id_for(i)))
    converted = act(
        stack,
        {"action": "convert_person", "person_id": person_id_for(spare), "opportunity_name": "Demo deal"},
    )
    say(
        f"\nOn the marketing side (the actions Lambda): 20 leads' notes and 10 contacts' city changed; "
        f"the same field (title) changed on both sides for lead {leads[0]} and contact {contacts[0]}; "
        f"a new person synced now by Sync Person -> lead {synced.get('sf_id')} "
        f"(created={synced.get('created')}, last name and company from the defaults); campaign "
        f"{webinar.get('campaign_id')} created with statuses {webinar.get('statuses')}, the new person "
        f"added as {joined.get('status')!r}; lead {spare} converted now into contact "
        f"{converted.get('sf_id')} with opportunity {converted.get('opportunity_id')}"
    )
    t0 = time.monotonic()
    gate.release()
    gate.reached()
    equal = report(4, state, stores, server, time.monotonic() - t0, kept)
    checks = [(leads[0], "Title", "job_title"), (contacts[0], "Title", "job_title")]
    checks += [(i, "Description", "notes") for i in leads[1:]] + [
        (i, "MailingCity", "city") for i in contacts[1:]
    ]
    converged = 0
    for record_id, sf_field, field in checks:
        found = emu.org.find(record_id)
        person = people.get(person_id_for(record_id))
        if found and person and found[1].get(sf_field) == person.fields.get(field):
            converged += 1
    winners = []
    for (sobject, record_id), winner in both.items():
        found = emu.org.find(record_id)
        value = found[1].get("Title") if found else None
        expected = "Set in marketing" if winner == "marketing" else "Set in Salesforce"
        winners.append(value == expected)
        say(f"  {sobject} {record_id}: title on both sides is {value!r} ({winner} wins for a {sobject})")
    say(f"  edited people equal on both sides: {converged} of {len(checks)}")
    member = [
        m
        for m in emu.org.records("CampaignMember")
        if m["CampaignId"] == webinar.get("campaign_id") and m.get("LeadId") == synced.get("sf_id")
    ]
    acted = bool(member) and member[0]["Status"] == "Attended" and converted.get("ok") is True
    person = people.get(person_id_for(spare))
    acted = acted and person is not None and person.sf_type == "Contact"
    say(f"  campaign membership and conversion in Salesforce and on the marketing side: {acted}")
    return equal and converged == len(checks) and all(winners) and acted


def http_api(
    api: str,
    gate: CycleGate,
    server: EmulatorServer,
    people: PeopleRepository,
    state: StateRepository,
    stores: tuple[PeopleRepository, RecordsRepository],
    kept: set[str],
    lead_ids: list[str],
) -> bool:
    """The marketing database's HTTP API, as another marketing system would call it: a real HTTP client
    against the local stack's API (payload 2.0 events, the IAM authorizer's context)."""
    say(f"\nThe HTTP API at {api} (IAM-authorized on AWS; its document at {api}/openapi.json):")
    lead = next(i for i in lead_ids[50:] if i not in kept and people.get(person_id_for(i)))
    stored = people.get(person_id_for(lead))
    assert stored is not None
    assert stored.email
    found = requests.post(f"{api}/people/search", json={"email": stored.email}, timeout=30).json()["items"]
    person_id = found[0]["person_id"]
    say(f"  POST /people/search (the email in the body, never in a URL) -> {len(found)} person: {person_id}")
    read = requests.get(f"{api}/people/{person_id}", timeout=30)
    etag = read.headers["ETag"]
    edit = {"values": {"job_title": "Head of Marketing APIs"}}
    updated = requests.patch(f"{api}/people/{person_id}", json=edit, headers={"If-Match": etag}, timeout=30)
    stale = requests.patch(
        f"{api}/people/{person_id}",
        json={"values": {"job_title": "Lost edit"}},
        headers={"If-Match": etag},
        timeout=30,
    )
    say(
        f"  PATCH /people/{person_id} with If-Match {etag} -> {updated.status_code}, now ETag "
        f"{updated.headers.get('ETag')}; again with {etag} -> {stale.status_code} "
        f"({stale.json().get('title')}), nothing written"
    )
    batch = [
        {
            "values": {
                "email": f"import{n}@api-demo.example",
                "first_name": "Imported",
                "last_name": f"No. {n}",
            }
        }
        for n in range(97)
    ]
    batch += [
        {"values": {"email": "not an address", "last_name": "Broken"}},
        {"values": {"email": "ok@api-demo.example", "shoe_size": 44}},
        {"person_id": "00000000-0000-4000-8000-000000000000", "values": {"city": "Nowhere"}},
    ]
    imported = requests.post(
        f"{api}/people/batch",
        json={"people": batch},
        headers={"Idempotency-Key": "demo-import-1"},
        timeout=60,
    )
    again = requests.post(
        f"{api}/people/batch",
        json={"people": batch},
        headers={"Idempotency-Key": "demo-import-1"},
        timeout=60,
    )
    answer = imported.json()
    say(
        f"  POST /people/batch of {len(batch)} -> {imported.status_code}: created {answer['created']}, "
        f"updated {answer['updated']}, failed {answer['failed']}"
    )
    for result in answer["results"]:
        if not result["ok"]:
            say(f"    #{result['index']}: {result['status']} {result['problems'][0]['detail']}")
    say(f"  the same batch sent again with its Idempotency-Key -> the first answer: {again.json() == answer}")
    history = requests.get(f"{api}/people/{person_id}/history", params={"limit": 5}, timeout=30).json()
    newest = history["items"][0]
    say(
        f"  GET /people/{person_id}/history -> newest: {newest['field']} {newest['old']!r} -> "
        f"{newest['new']!r} by {newest['source']}"
    )
    t0 = time.monotonic()
    gate.release()
    gate.reached()
    equal = report(7, state, stores, server, time.monotonic() - t0, kept)
    found_lead = server.emulator.org.find(lead)
    title = found_lead[1].get("Title") if found_lead else None
    say(f"  lead {lead} in Salesforce after the cycle: Title {title!r}")
    ok = (
        updated.status_code == 200
        and stale.status_code == 412
        and answer["created"] == 97
        and answer["failed"] == 3
        and again.json() == answer
        and newest["new"] == "Head of Marketing APIs"
        and title == "Head of Marketing APIs"
    )
    say(f"  the API did what it said, and its change reached Salesforce in the next cycle: {ok}")
    return equal and ok


def main() -> int:
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    # moto's interpreter logs a Fail state's error as it ends an execution; the demo says it itself
    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=10_000, help="records in the seeded org (all objects)")
    parser.add_argument("--slice", type=int, default=500, help="records per sync Lambda call (one slice)")
    args = parser.parse_args()

    say(f"Seeding an emulated Salesforce org of about {args.size:,} records ...")
    emulator = Emulator()
    summary = seed(emulator, size=args.size, random_seed=7)
    leads = summary["objects"].get("Lead", 0)
    say(f"  {summary['size']:,} records ({leads:,} leads), {summary['seconds']:.1f} s")
    gate = CycleGate()
    started = time.monotonic()
    with EmulatorServer(emulator) as server, DynamoDBLocal() as ddb:
        say(f"Emulated org at {server.url}; DynamoDB Local at {ddb.endpoint_url}")
        secret = server.sync_secret()
        with (
            redirect_stdout(StringIO()),
            LocalStack(
                dynamodb=ddb,
                stack_name="sfsync-demo",
                secrets={"SalesforceSecret": secret},
                parameters={
                    "SliceRecords": args.slice,
                    "SyncObjects": ",".join(("Lead", "Contact", *RECORD_OBJECTS, *CUSTOM)),
                    "SyncFilterField": FILTER,
                },
                wait_gate=gate,
                extra_env={"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_TRACE_DISABLED": "1"},
            ) as stack,
            OperatorEndpoint(stack),  # `sfsync --local` finds the stack by the file it writes
            HttpApiServer(stack) as api,  # the HTTP API, over HTTP on loopback
        ):
            gate.stack = stack
            say(
                f"Local stack up in {time.monotonic() - started:.1f} s: tables, 7 functions, the HTTP API, "
                "the cycle state machine, the EventBridge rule (fired by the demo)"
            )
            state = StateRepository(stack.table_name("StateTable"))
            people = PeopleRepository(stack.table_name("PeopleTable"), stack.table_name("StateTable"))
            stores = (people, RecordsRepository(stack.table_name("RecordsTable")))
            emu, admin = server.emulator, server.emulator.admin_user_id
            kept: set[str] = set()
            equal = []

            # cycle 1: the first copy
            t0 = time.monotonic()
            say("\nFiring the schedule rule ->", stack.fire_rule("DispatcherFunction", "KeepAlive")["reason"])
            copying(state, "Contact")
            sfsync("status")  # the first copy under way: a progress bar per object
            gate.reached()
            equal.append(report(1, state, stores, server, time.monotonic() - t0, kept))
            # (a manual trigger here would be a sync now: it replaces the waiting chain)
            second = stack.fire_rule("DispatcherFunction", "KeepAlive")
            say(f"  the schedule's check, chain alive: started={second['started']} ({second['reason']})")

            # cycle 2: edits, creates and deletes made in Salesforce while the chain waits
            ids = sorted(
                r["Id"]
                for r in emu.org.records("Lead")
                if not r.get("IsConverted") and r.get(FILTER) is not False
            )
            for lead_id in ids[:25]:
                emu.org.update("Lead", lead_id, {"Title": "VP Marketing Ops"}, admin)
            for i in range(10):
                emu.org.create(
                    "Lead",
                    {"LastName": f"Newlead{i}", "Company": "Demo Co", "Email": f"new{i}@demo.example"},
                    admin,
                )
            for lead_id in ids[25:30]:
                emu.org.delete("Lead", lead_id, admin)
            contacts = sorted(r["Id"] for r in emu.org.records("Contact"))
            for contact_id in contacts[:5]:
                emu.org.update("Contact", contact_id, {"Department": "Demo"}, admin)
            opportunities = sorted(r["Id"] for r in emu.visible_records("Opportunity"))
            for opportunity_id in opportunities[:5]:
                emu.org.update("Opportunity", opportunity_id, {"StageName": "Negotiation/Review"}, admin)
            for task_id in sorted(r["Id"] for r in emu.visible_records("Task"))[:5]:
                emu.org.delete("Task", task_id, admin)
            campaign = sorted(r["Id"] for r in emu.visible_records("Campaign"))[0]
            members = {r.get("ContactId") for r in emu.visible_records("CampaignMember")}
            joiner = next(c for c in contacts if c not in members)
            emu.org.create("CampaignMember", {"CampaignId": campaign, "ContactId": joiner}, admin)
            say(
                "\nIn Salesforce: 25 leads edited, 10 created, 5 deleted; 5 contacts edited; 5 opportunities "
                "edited; 5 tasks deleted; 1 contact added to a campaign"
            )
            t0 = time.monotonic()
            gate.release()
            gate.reached()
            equal.append(report(2, state, stores, server, time.monotonic() - t0, kept))

            # cycle 3: a lead converted, two contacts merged, one lead edited twice
            converted = emu.org.convert_lead(ids[40], admin)
            emu.org.merge("Contact", contacts[10], [contacts[11]], admin)
            emu.org.update("Lead", ids[41], {"Phone": "+1 555 0100"}, admin)
            emu.org.update("Lead", ids[41], {"Phone": "+1 555 0199"}, admin)
            accounts = sorted(r["Id"] for r in emu.visible_records("Account"))
            emu.org.merge("Account", accounts[0], [accounts[1]], admin)
            emu.org.update("Lead", ids[42], {FILTER: False, "Title": "Not for marketing"}, admin)
            kept.add(ids[42])
            say(
                f"\nIn Salesforce: lead {ids[40]} converted into contact {converted.contact_id}; contacts "
                f"{contacts[11]} merged into {contacts[10]} (roles, memberships and activities follow); "
                f"accounts {accounts[1]} merged into {accounts[0]}; 1 lead edited twice; 1 lead's "
                f"{FILTER} turned false (it stops updating, and stays)"
            )
            t0 = time.monotonic()
            gate.release()
            gate.reached()
            equal.append(report(3, state, stores, server, time.monotonic() - t0, kept))
            person = people.get(person_id_for(ids[40]))
            assert person is not None
            say(
                f"  the converted lead's person {person.person_id} is now the {person.sf_type} "
                f"{person.sf_id}, same marketing id"
            )

            # cycle 4: edits on both sides (the same field too), and a new marketing person synced now
            equal.append(two_way(stack, gate, server, people, state, stores, kept, ids))

            # cycle 5: nothing changed
            t0 = time.monotonic()
            gate.release()
            gate.reached()
            equal.append(report(5, state, stores, server, time.monotonic() - t0, kept))

            # the operator's commands: status, errors, history, pause and resume, resync, sync now
            equal.append(operate(gate, state, server, stores, kept, ids))

            # cycle 7: another marketing system, through the HTTP API
            equal.append(http_api(api.url, gate, server, people, state, stores, kept, ids))

            for text in stack.runtime_errors:
                say(f"  the local Step Functions interpreter failed a state: {text.strip().splitlines()[-1]}")
            say("\nPausing the sync and letting the chain end ...")
            state.set_paused(True)
            gate.release()
            executions = stack.wait_idle(timeout=120)
            say(
                f"  {len(executions)} cycle executions, all {sorted({e['status'] for e in executions})}; "
                f"Salesforce API calls counted by the org: {emu.api_calls}"
            )
    say(f"\nEverything stopped. Total {time.monotonic() - started:.1f} s.")
    if not all(equal):
        say("Some counts differ between Salesforce and the marketing database (see above).")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
