"""The seeded org: deterministic, about the requested size, valid by the store's own rules, realistic."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from sf_emulator.app import Emulator
from sf_emulator.clock import Clock, format_datetime
from sf_emulator.errors import SalesforceError
from sf_emulator.seed import seed
from sf_emulator.server import EmulatorServer
from sf_emulator.store import CONVERTED_STATUS, OrgView

FROZEN = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
SEEDED_BY_WRITER = (
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
)


def frozen_emulator() -> Emulator:
    clock = Clock()
    clock.freeze(FROZEN)
    return Emulator(clock=clock)


def live(emu: Emulator, obj: str) -> list[dict[str, Any]]:
    return list(emu.org.records(obj))


def strip(record: dict[str, Any], ignore: set[str]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ignore}


def snapshot(emu: Emulator) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    return {name: list(table.items()) for name, table in emu.org.tables.items()}


@pytest.fixture(scope="module")
def seeded() -> tuple[Emulator, dict[str, Any]]:
    emu = Emulator()
    summary = seed(emu, size=3000, random_seed=7)
    return emu, summary


def test_same_seed_and_size_give_identical_orgs_and_another_seed_differs() -> None:
    # given three fresh emulators whose clocks stand at the same instant
    first, second, third = frozen_emulator(), frozen_emulator(), frozen_emulator()

    # when two are seeded alike and the third with another random seed
    seed(first, size=400, random_seed=11)
    seed(second, size=400, random_seed=11)
    seed(third, size=400, random_seed=12)

    # then the first two hold the same records with the same ids, in the same order; the third does not
    assert snapshot(first) == snapshot(second)
    assert snapshot(first) != snapshot(third)


@pytest.mark.parametrize("size", [500, 3000])
def test_total_is_within_five_percent_of_the_requested_size(size: int) -> None:
    # given a fresh emulator and what it holds before seeding
    emu = Emulator()
    before = sum(len(t) for t in emu.org.tables.values())

    # when it is seeded
    summary = seed(emu, size=size, random_seed=3)

    # then the summary and the org agree on the count, and it is within 5 % of the request
    after = sum(len(t) for t in emu.org.tables.values())
    assert summary["size"] == after - before == sum(summary["objects"].values())
    assert abs(summary["size"] - size) <= size * 0.05
    assert summary["seed"] == 3
    assert isinstance(summary["seconds"], float)


def test_people_and_activities_come_in_realistic_proportions(seeded: tuple[Emulator, dict[str, Any]]) -> None:
    # given the seeded org
    emu, summary = seeded
    objects = summary["objects"]

    # then leads are about 40 % of people, ~5 % of leads are converted, and every object is there
    leads, contacts = objects["Lead"], objects["Contact"]
    assert 0.33 <= leads / (leads + contacts) <= 0.45
    converted = sum(1 for r in live(emu, "Lead") if r.get("IsConverted"))
    assert 0.03 * leads <= converted <= 0.07 * leads
    assert all(objects.get(name, 0) > 0 for name in SEEDED_BY_WRITER)
    assert objects["User"] >= 3
    assert objects["Group"] == 1


def test_every_reference_points_at_an_existing_record_of_an_allowed_type(
    seeded: tuple[Emulator, dict[str, Any]],
) -> None:
    # given the seeded org
    emu, _ = seeded
    org = emu.org

    # when every reference field of every record is followed
    broken = []
    for name in org.tables:
        obj = org.object(name)
        refs = [f for f in obj.fields.values() if f.type == "reference"]
        for record in org.records(name):
            for fdef in refs:
                value = record.get(fdef.name)
                if value is None:
                    continue
                found = org.find(value)
                if found is None or found[1].get("IsDeleted") or found[0].name not in fdef.reference_to:
                    broken.append((name, record["Id"], fdef.name, value))

    # then none is broken
    assert broken == []


def test_accounts_contacts_opportunities_and_roles_fit_together(
    seeded: tuple[Emulator, dict[str, Any]],
) -> None:
    # given the seeded org
    emu, _ = seeded
    contacts_per_account = Counter(c["AccountId"] for c in live(emu, "Contact"))
    contact_account = {c["Id"]: c.get("AccountId") for c in live(emu, "Contact")}
    roles = defaultdict(list)
    for role in live(emu, "OpportunityContactRole"):
        roles[role["OpportunityId"]].append(role)

    # then every account has 1-5 contacts, every opportunity 1-3 roles on its account's contacts, one primary
    assert all(1 <= contacts_per_account[a["Id"]] <= 5 for a in live(emu, "Account"))
    for opportunity in live(emu, "Opportunity"):
        on_it = roles[opportunity["Id"]]
        assert 1 <= len(on_it) <= 3
        assert all(contact_account[r["ContactId"]] == opportunity["AccountId"] for r in on_it)
        assert sum(1 for r in on_it if r["IsPrimary"]) == 1


def test_campaign_members_have_one_of_their_campaigns_statuses(
    seeded: tuple[Emulator, dict[str, Any]],
) -> None:
    # given the seeded org's campaign member statuses per campaign
    emu, _ = seeded
    statuses: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for status in live(emu, "CampaignMemberStatus"):
        statuses[status["CampaignId"]][status["Label"]] = status

    # then every campaign has exactly one default status and one that counts as responded
    for campaign in live(emu, "Campaign"):
        labels = statuses[campaign["Id"]]
        assert sum(1 for s in labels.values() if s["IsDefault"]) == 1
        assert any(s["HasResponded"] for s in labels.values())

    # and every member has a status of its own campaign, HasResponded to match, and no one is a member twice
    pairs = Counter()
    for member in live(emu, "CampaignMember"):
        status = statuses[member["CampaignId"]].get(member["Status"])
        assert status is not None, member
        assert member["HasResponded"] is status["HasResponded"]
        assert (member.get("FirstRespondedDate") is not None) is status["HasResponded"]
        assert member.get("LeadId") or member.get("ContactId")
        pairs[(member["CampaignId"], member.get("LeadId") or member["ContactId"])] += 1
    assert max(pairs.values()) == 1


def test_converted_leads_point_at_what_the_conversion_created(
    seeded: tuple[Emulator, dict[str, Any]],
) -> None:
    # given the seeded org's converted leads
    emu, _ = seeded
    org = emu.org
    converted = [r for r in live(emu, "Lead") if r.get("IsConverted")]
    assert converted

    # then each has its account, contact and opportunity, the converted status and a conversion date
    for lead in converted:
        contact = org.get(lead["ConvertedContactId"])
        opportunity = org.get(lead["ConvertedOpportunityId"])
        assert contact is not None and opportunity is not None
        assert contact["AccountId"] == lead["ConvertedAccountId"] == opportunity["AccountId"]
        assert contact["LastName"] == lead["LastName"]
        assert lead["Status"] == CONVERTED_STATUS
        assert lead["ConvertedDate"] == lead["SystemModstamp"][:10]
        assert lead["CreatedDate"] <= lead["SystemModstamp"] == contact["CreatedDate"]

    # and no activity or campaign membership still points at only a converted lead
    converted_ids = {lead["Id"] for lead in converted}
    for name in ("Task", "Event"):
        assert not any(r.get("WhoId") in converted_ids for r in live(emu, name))
    assert all(m.get("ContactId") for m in live(emu, "CampaignMember") if m.get("LeadId") in converted_ids)


def test_emails_web_leads_marketing_ids_and_sync_flags_look_like_a_real_org(
    seeded: tuple[Emulator, dict[str, Any]],
) -> None:
    # given the seeded org's people
    emu, _ = seeded
    leads, contacts = live(emu, "Lead"), live(emu, "Contact")
    people = leads + contacts

    # then Web leads all have an email, some people have none, and some leads share a contact's email
    web = [r for r in leads if r.get("LeadSource") == "Web"]
    assert web and all(r.get("Email") for r in web)
    assert any(not r.get("Email") for r in people)
    contact_emails = {c["Email"].lower() for c in contacts if c.get("Email")}
    assert any(
        r.get("Email") and r["Email"].lower() in contact_emails and not r.get("IsConverted") for r in leads
    )

    # and the marketing id is mostly empty while ~2 % are not to be synced
    assert sum(1 for r in people if r.get("Marketing_Id__c")) < 0.2 * len(people)
    not_synced = sum(1 for r in people if r.get("Sync_To_Marketing__c") is False)
    assert 0.005 * len(people) <= not_synced <= 0.05 * len(people)


def test_picklists_hold_schema_values_and_unique_fields_are_unique(
    seeded: tuple[Emulator, dict[str, Any]],
) -> None:
    # given the seeded org
    emu, _ = seeded
    org = emu.org

    # then every picklist value is one of the schema's values (campaign member statuses aside)
    for name in SEEDED_BY_WRITER:
        obj = org.object(name)
        for fdef in obj.fields.values():
            if fdef.type != "picklist" or not fdef.picklist_values:
                continue
            values = {r.get(fdef.name) for r in org.records(name)} - {None}
            assert values <= set(fdef.picklist_values), (name, fdef.name)

    # and unique fields hold no duplicate (case-insensitively), all in the store's unique index
    for name in ("Lead", "Contact", "Subscription__c"):
        obj = org.object(name)
        for fdef in (f for f in obj.fields.values() if f.unique):
            values = [str(r[fdef.name]).lower() for r in org.records(name) if r.get(fdef.name) is not None]
            assert len(values) == len(set(values))
            assert set(values) <= set(org._unique.get((obj.name, fdef.name), {}))
    assert all(r.get("External_Key__c") for r in live(emu, "Subscription__c"))


def test_private_owners_leads_exist_but_the_sync_user_cannot_see_them(
    seeded: tuple[Emulator, dict[str, Any]],
) -> None:
    # given the seeded org and its private owner
    emu, _ = seeded
    org = emu.org
    owner = org.user_by_username("private.owner@acme.example")
    assert owner is not None
    lead_obj = org.object("Lead")

    # when the leads are listed as the sync user and as the admin
    as_sync = {r["Id"] for r in OrgView(org, emu.integration_user["Id"]).iter_records(lead_obj, False)}
    as_admin = {r["Id"] for r in OrgView(org, emu.admin_user_id).iter_records(lead_obj, False)}

    # then the private owner's leads are only in the admin's list, and the queue owns leads too
    private = {r["Id"] for r in live(emu, "Lead") if r["OwnerId"] == owner["Id"]}
    assert len(private) >= 3
    assert private <= as_admin
    assert not private & as_sync
    assert any(r["OwnerId"].startswith("00G") for r in live(emu, "Lead"))


def test_stamps_rise_with_ids_within_the_last_twenty_days_with_same_second_ties(
    seeded: tuple[Emulator, dict[str, Any]],
) -> None:
    # given the seeded org and its clock
    emu, _ = seeded
    now = emu.clock.now()
    oldest = format_datetime(now - timedelta(days=21))
    newest = format_datetime(now)
    ties = 0
    for name in SEEDED_BY_WRITER:
        records = live(emu, name)
        created = [r["CreatedDate"] for r in records]

        # then CreatedDate never decreases in Id order, SystemModstamp is never before it, all in the past
        assert created == sorted(created), name
        assert all(oldest <= r["CreatedDate"] <= r["SystemModstamp"] < newest for r in records), name
        assert all(r["LastModifiedDate"] == r["SystemModstamp"] for r in records), name
        ties += sum(n - 1 for n in Counter(created).values())
    # and many records share their creation second with another
    assert ties > 300


def test_seeded_records_pass_the_stores_own_coercion_and_validation(
    seeded: tuple[Emulator, dict[str, Any]],
) -> None:
    # given the seeded org
    emu, _ = seeded
    org = emu.org

    for name in org.tables:
        obj = org.object(name)
        for record in org.records(name):
            # when its createable fields go through the store's coercion, and the record through validation
            given = {k: v for k, v in record.items() if k != "Id" and obj.field(k).createable}
            clean = org._coerce(obj, given, insert=True, system=False, profile=None)
            org._validate(obj, record, set(record), insert=False, existing_id=record["Id"])

            # then the values were already in wire form, types included, and validation raised nothing
            assert {k: (type(v), v) for k, v in clean.items()} == {k: (type(v), v) for k, v in given.items()}


def test_the_stores_insert_rebuilds_a_sample_of_seeded_records_exactly() -> None:
    # given a seeded org and, per object, a sample of records untouched since they were created
    emu = Emulator()
    seed(emu, size=600, random_seed=5)
    org = emu.org
    compared = Counter()
    for name in SEEDED_BY_WRITER:
        obj = org.object(name)
        table = org.tables[obj.name]
        untouched = [r for r in table.values() if r["SystemModstamp"] == r["CreatedDate"]]
        for record in untouched[:: max(1, len(untouched) // 8)]:
            # when the record is taken out and inserted again through Org._insert with the same values
            del table[record["Id"]]
            org._unindex(obj, record)
            sizes = {n: len(t) for n, t in org.tables.items()}
            given = {k: v for k, v in record.items() if k != "Id" and obj.field(k).createable}
            rebuilt = org._insert(obj, given, record["CreatedById"], modstamp=record["CreatedDate"])
            extra = {n: list(t.values())[sizes[n] :] for n, t in org.tables.items() if len(t) > sizes[n]}
            for n, records in extra.items():
                for r in records:
                    del org.tables[n][r["Id"]]
                    org._unindex(org.object(n), r)
            table[record["Id"]] = record
            org._index(obj, record)

            # then the store builds the same record (but a member's FirstRespondedDate: the store uses today)
            ignore = {"Id", "FirstRespondedDate"}
            assert strip(rebuilt, ignore) == strip(record, ignore), name
            # and whatever else the store creates with it (a campaign's statuses) was seeded with it as well
            added = [
                strip(r, {"Id", "CampaignId"})
                for records in extra.values()
                for r in records
                if r is not rebuilt
            ]
            if added:
                seeded_children = [
                    strip(r, {"Id", "CampaignId"})
                    for r in org.records("CampaignMemberStatus")
                    if r.get("CampaignId") == record["Id"]
                ]
                assert added == seeded_children[: len(added)], name
            compared[name] += 1
    assert set(compared) == set(SEEDED_BY_WRITER)


def test_seeding_twice_reuses_users_and_keeps_unique_values_unique() -> None:
    # given an org seeded once
    emu = Emulator()
    first = seed(emu, size=300, random_seed=9)

    # when it is seeded again with the same random seed
    second = seed(emu, size=300, random_seed=9)

    # then no user or queue is created twice, and the marketing ids and external keys stay unique
    assert first["objects"]["User"] >= 3 and "User" not in second["objects"]
    assert "Group" not in second["objects"]
    usernames = [u["Username"] for u in emu.org.tables["User"].values()]
    assert len(usernames) == len(set(usernames))
    for name, field in (
        ("Lead", "Marketing_Id__c"),
        ("Contact", "Marketing_Id__c"),
        ("Subscription__c", "External_Key__c"),
    ):
        values = [r[field].lower() for r in live(emu, name) if r.get(field)]
        assert len(values) == len(set(values)), name


@pytest.mark.parametrize("size", [0, -5])
def test_a_size_below_one_is_refused(size: int) -> None:
    # given a fresh emulator
    emu = Emulator()

    # when it is asked for an empty or negative org, then the request is refused and nothing is created
    with pytest.raises(SalesforceError) as err:
        seed(emu, size=size)
    assert err.value.code == "INVALID_FIELD"
    assert len(emu.org.tables["User"]) == 2


def test_the_admin_endpoint_seeds_the_served_org_and_the_sync_user_queries_it(
    server: EmulatorServer, http: requests.Session, sf: Any
) -> None:
    # given a served emulator
    emu = server.emulator

    # when a client asks the admin endpoint for a seeded org
    reply = http.post(f"{server.url}/__emulator__/seed", json={"size": 400, "seed": 21})

    # then it answers with the summary, and the sync user's SOQL sees every lead but the private owner's
    assert reply.status_code == 200
    summary = reply.json()
    assert summary["seed"] == 21 and abs(summary["size"] - 400) <= 20
    owner = emu.org.user_by_username("private.owner@acme.example")
    assert owner is not None
    leads = live(emu, "Lead")
    private = sum(1 for r in leads if r["OwnerId"] == owner["Id"])
    assert private >= 3
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == len(leads) - private
