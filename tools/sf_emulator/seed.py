"""A realistic, deterministic org of about ``size`` records: ``seed(emu, size, random_seed)``.

What is created (all counts scale with ``size``; the constants below hold the proportions):

* a handful of sales users (``Standard User`` profile), one of them the schema's private owner
  (``sharing.private_owners``), who owns a few leads the sync user cannot see, and a lead queue;
* accounts with 1-5 contacts each, some with a parent account, contacts sometimes reporting to
  the account's first contact;
* leads (about 40 % of people), some owned by the queue, ~5 % converted through
  ``Org.convert_lead`` (which creates their account, contact, opportunity and contact role);
* opportunities on accounts with 1-3 contact roles to the account's contacts;
* campaigns with their member statuses (``Sent`` default, ``Responded``, sometimes
  ``Registered``/``Attended``) and members (leads and contacts) with statuses of that campaign;
* tasks and events on leads and contacts (``WhatId`` only on contacts' activities, as in Salesforce);
* ``Subscription__c`` records on contacts with unique ``External_Key__c`` (when the schema has them).

People mostly have no ``Marketing_Id__c`` (the marketing side's id); ~2 % have
``Sync_To_Marketing__c`` false; Web leads always have an email, some people have none, and some
leads share an email with a contact (the duplicates real orgs have). Email domains end in
``.example`` so nothing seeded can ever reach a real mailbox. Picklist values come from the
schema; custom fields and objects the schema does not have are simply left out.

Time: every record is created at a whole second of the ``WINDOW_DAYS`` days before midnight
(UTC) of the org clock's current day, in increasing order per object (Id order = creation order),
with many same-second ties (list imports, an account saved with its contacts, a campaign with its
statuses). So every stamp is in the past, within getUpdated's 30-day window, and a seed run on the
same day with the same ``random_seed`` and ``size`` gives identical records and ids in a fresh org.

Speed: the store's validating ``Org._insert`` costs ~100 us a record and checks campaign members
against every member (quadratic), so records are written here through ``_Writer``, which sets
exactly what ``_insert`` sets (defaults, system fields, owner, ``Org._derive``, the unique index)
and runs the org's compiled validation rules; tests re-validate seeded records through the store.
Users, the queue and lead conversions go through the store itself.
"""

from __future__ import annotations

import re
import time
import unicodedata
import uuid
from bisect import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from random import Random
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from .clock import Clock, format_datetime
from .errors import RecordRejected, SalesforceError
from .schema import NUMBER_TYPES, TEXT_TYPES, FieldDef, ObjectDef
from .store import CONVERTED_STATUS, Org

if TYPE_CHECKING:
    from .app import Emulator

T = TypeVar("T")

# -- proportions ------------------------------------------------------------------------------
WINDOW_DAYS = 20  # records are created over the last WINDOW_DAYS days (getUpdated allows 30)
BUSINESS_HOURS_SHARE = 0.8  # share of hand-made records created 07:00-19:00 UTC
MIN_SALES_USERS = 3
RECORDS_PER_EXTRA_USER = 25_000  # one more sales user per this many records (up to the roster)
CONTACTS_PER_ACCOUNT = {1: 22, 2: 26, 3: 24, 4: 16, 5: 12}  # weights; mean ~2.7
LEAD_SHARE = 0.40  # leads / (leads + contacts)
CONVERTED_LEAD_SHARE = 0.05  # of leads; each conversion adds an account, contact, opportunity, role
CONVERTED_LEAD_AGE = 0.4  # converted leads come from the oldest leads (first 40 % of the window) ...
CONVERSION_DELAY = 86400  # ... and are converted about a day after their last activity (mean, seconds)
QUEUE_LEAD_SHARE = 0.08  # of leads, owned by the lead queue
PRIVATE_LEAD_SHARE = 0.01  # of leads, owned by the private owner (at least MIN_PRIVATE_LEADS)
MIN_PRIVATE_LEADS = 3
PARENT_ACCOUNT_SHARE = 0.04
REPORTS_TO_SHARE = 0.25  # of an account's later contacts
OPPORTUNITIES_PER_ACCOUNT = {0: 55, 1: 35, 2: 10}  # weights; mean 0.55
ROLES_PER_OPPORTUNITY = {1: 45, 2: 35, 3: 20}  # weights, capped by the account's contacts
PEOPLE_PER_CAMPAIGN = 250  # one campaign per this many people (at least MIN_CAMPAIGNS)
MIN_CAMPAIGNS = 2
EVENT_STATUS_SHARE = 0.6  # of webinars/conferences/trade shows that track Registered/Attended
MEMBERS_PER_PERSON = 0.30
EVENTS_PER_PERSON = 0.15
TASKS_PER_PERSON = 0.60  # the target; tasks absorb rounding so that the total matches ``size``
SUBSCRIPTIONS_PER_CONTACT = 0.35
IMPORT_SHARE = 0.30  # of accounts and of Purchased List leads, arriving in same-second list imports
IMPORT_BATCH = (20, 250)
NO_EMAIL_SHARE = 0.08  # of people (never Web leads)
SHARED_EMAIL_SHARE = 0.03  # of leads, the same person as an existing contact (same email)
FREE_MAIL_SHARE = 0.12  # of leads, a personal address instead of the company domain
MARKETING_ID_SHARE = 0.08  # of people, created by the sync user with the marketing side's id
NO_SYNC_SHARE = 0.02  # of people, Sync_To_Marketing__c = false
OPTED_OUT_SHARE = 0.05
DO_NOT_CALL_SHARE = 0.03
SCORE_SHARE = 0.6
HIDDEN_NOTES_SHARE = 0.08
MESSY_COUNTRY_SHARE = 0.1  # "USA" / "US" / "UK" instead of the full name

# Weights for picklist values by label; values the schema has and these do not get weight 1.
LEAD_SOURCE_WEIGHTS = {
    "Web": 35,
    "Phone Inquiry": 12,
    "Partner Referral": 14,
    "Purchased List": 24,
    "Other": 15,
}
LEAD_STATUS_WEIGHTS = {"Open - Not Contacted": 45, "Working - Contacted": 35, "Closed - Not Converted": 20}
WORKING_STATUS = "Working - Contacted"
RATING_WEIGHTS = {"Hot": 15, "Warm": 45, "Cold": 40}
SALUTATION_SHARE = 0.5
ACCOUNT_TYPE_WEIGHTS = {
    "Prospect": 45,
    "Customer - Direct": 30,
    "Customer - Channel": 8,
    "Partner": 10,
    "Other": 7,
}
TIER_WEIGHTS = {"Gold": 15, "Silver": 35, "Bronze": 50}
STAGE_WEIGHTS = {
    "Prospecting": 22,
    "Qualification": 18,
    "Needs Analysis": 14,
    "Proposal/Price Quote": 12,
    "Negotiation/Review": 8,
    "Closed Won": 16,
    "Closed Lost": 10,
}
STAGE_PROBABILITY = {
    "Prospecting": 10,
    "Qualification": 20,
    "Needs Analysis": 40,
    "Proposal/Price Quote": 60,
    "Negotiation/Review": 80,
    "Closed Won": 100,
    "Closed Lost": 0,
}
ROLE_WEIGHTS = {
    "Decision Maker": 30,
    "Economic Buyer": 15,
    "Evaluator": 20,
    "Influencer": 15,
    "Business User": 15,
    "Other": 5,
}
CAMPAIGN_TYPE_WEIGHTS = {
    "Webinar": 30,
    "Email": 30,
    "Conference": 12,
    "Trade Show": 10,
    "Advertisement": 10,
    "Other": 8,
}
EVENT_CAMPAIGN_TYPES = ("Webinar", "Conference", "Trade Show")
# Member statuses of every campaign, unless the store gives new campaigns some itself (see
# _store_default_statuses), and those webinars/conferences/trade shows add: (label, HasResponded).
DEFAULT_STATUSES = (
    {"Label": "Sent", "IsDefault": True, "HasResponded": False, "SortOrder": 1},
    {"Label": "Responded", "IsDefault": False, "HasResponded": True, "SortOrder": 2},
)
EVENT_STATUSES = (("Registered", False), ("Attended", True))
MEMBER_STATUS_WEIGHTS = {"Sent": 55, "Responded": 25, "Registered": 12, "Attended": 8}
TASK_STATUS_WEIGHTS = {
    "Completed": 60,
    "Not Started": 20,
    "In Progress": 12,
    "Waiting on someone else": 4,
    "Deferred": 4,
}
PRIORITY_WEIGHTS = {"Normal": 70, "High": 20, "Low": 10}
PLAN_WEIGHTS = {"Free": 30, "Starter": 35, "Pro": 25, "Enterprise": 10}
PLAN_SEATS = {"Free": (1, 1), "Starter": (1, 5), "Pro": (5, 50), "Enterprise": (50, 500)}

# -- vocabulary (comma-separated lists; a country's row may go on over indented lines) --------------


def _items(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.replace("\n", " ").split(",") if item.strip())


def _pairs(text: str) -> dict[str, str]:
    return dict(tuple(part.strip() for part in item.split(":", 1)) for item in _items(text))  # type: ignore[misc]


class _Country(NamedTuple):
    cities: tuple[tuple[str, str | None], ...]  # (city, state)
    phone: str  # pattern: "#" a digit, "A" a letter
    postal: str
    streets: tuple[str, ...]
    style: str  # "en": 12 Main Street, "de": Hauptstraße 12, "jp": 1-2 Marunouchi
    suffixes: tuple[str, ...]  # of company names


def _countries(text: str) -> dict[str, _Country]:
    rows: list[str] = []
    for line in text.strip("\n").splitlines():
        if line.startswith(" ") and rows:
            rows[-1] += " " + line.strip()
        else:
            rows.append(line.strip())
    out = {}
    for row in rows:
        name, cities, phone, postal, streets, style, suffixes = (cell.strip() for cell in row.split("|"))
        out[name] = _Country(
            tuple((c.partition(":")[0], c.partition(":")[2] or None) for c in _items(cities)),
            phone,
            postal,
            _items(streets),
            style,
            _items(suffixes),
        )
    return out


SALES_TEAM = (
    ("Dana", "Whitfield", "Account Executive"),
    ("Marcus", "Oyelaran", "Sales Development Representative"),
    ("Priya", "Raman", "Account Executive"),
    ("Tomás", "Lindqvist", "Sales Manager"),
    ("Keiko", "Sato", "Account Executive"),
    ("Lucía", "Fernández", "Marketing Manager"),
    ("Oliver", "Brandt", "Sales Development Representative"),
    ("Amara", "Nwosu", "Account Executive"),
)
PRIVATE_OWNER = ("Morgan", "Hale", "Strategic Account Director")
QUEUE_NAME = "Lead Queue"
SEED_PROFILE = "Standard User"
USER_DOMAIN = "acme.example"

FIRST_NAMES = _items("""
James, Mary, Robert, Patricia, John, Jennifer, Michael, Linda, David, Elizabeth, William, Barbara, Richard,
Susan, Joseph, Jessica, Thomas, Sarah, Chris, Karen, Daniel, Lisa, Matthew, Nancy, Anthony, Sandra, Mark,
Ashley, Steven, Emily, Andrew, Michelle, Kevin, Amanda, Brian, Melissa, George, Stephanie, Ryan, Rebecca,
Hannah, Lukas, Sophie, Maximilian, Léa, Hugo, Chloé, Mateo, Sofía, Alejandro, Giulia, Lorenzo, Sanne, Daan,
Astrid, Björn, Siobhán, Cian, Aiko, Haruto, Yuki, Wei, Mei, Arjun, Ananya, Rahul, Fatima, Omar, Chidi, Ngozi,
Thiago, Beatriz, Zoë, François, José, Jürgen, Ingrid, Mohammed, Olga, Dmitri, Ana, Kwame, Lena
""")
LAST_NAMES = _items("""
Smith, Johnson, Williams, Brown, Jones, Garcia, Miller, Davis, Rodriguez, Martinez, Hernandez, Lopez, Wilson,
Anderson, Thomas, Taylor, Moore, Jackson, Martin, Lee, Thompson, White, Harris, Clark, Lewis, Walker, Hall,
Young, King, Wright, Scott, Green, Baker, Adams, Nelson, Campbell, Mitchell, Roberts, Carter, Phillips,
Müller, Schmidt, Schneider, Fischer, Weber, Dubois, Lefèvre, Moreau, Rossi, Russo, Bianchi, de Vries,
van den Berg, Jansen, Andersson, Johansson, Nilsson, O'Brien, Murphy, Kelly, Tanaka, Suzuki, Watanabe, Wang,
Li, Zhang, Chen, Patel, Sharma, Singh, Iyer, Okafor, Mensah, Silva, Santos, Oliveira, Kowalski, Nowak,
Ivanova, García-Márquez, Nguyen, Kim, Park, Cohen, Haddad, Al-Sayed, Smith-Jones
""")
SALUTATIONS = {"Mr.": 40, "Ms.": 40, "Mrs.": 8, "Dr.": 10, "Prof.": 2}
TITLES = _items("""
CEO, CFO, CTO, COO, CMO, VP of Sales, VP of Marketing, VP Engineering, Director of IT, Head of Operations,
Marketing Manager, Sales Manager, Product Manager, Software Engineer, Senior Software Engineer, Data Analyst,
Procurement Manager, Office Manager, Account Manager, Business Development Manager, IT Administrator,
Operations Analyst, HR Director, Customer Success Manager, Chief Revenue Officer, Purchasing Agent,
Consultant, Founder, Managing Director, Geschäftsführer, Directeur Commercial
""")
DEPARTMENTS = _items("""
Sales, Marketing, Finance, IT, Engineering, Operations, Procurement, Human Resources, Executive,
Customer Success
""")
COMPANY_WORDS = _items("""
Northwind, Blue Harbor, Silverline, Brightwater, Ironbridge, Greenfield, Summit, Pioneer, Atlas, Nova, Vertex,
Crescent, Redwood, Granite, Cobalt, Maple, Aurora, Lumen, Quantum, Evergreen, Falcon, Horizon, Keystone,
Meridian, Orion, Pinnacle, Sterling, Titan, Zenith, Alder, Beacon, Cedar, Delta, Ember, Fjord, Halcyon,
Juniper, Kestrel, Lark, Nordlicht, Sonnenberg, Belle Rive, Monteverde, Sakura, Rio Claro
""")
COMPANY_KINDS = _pairs("""
Logistics: Transportation, Analytics: Technology, Foods: Agriculture, Health: Healthcare, Systems: Technology,
Partners: Consulting, Energy: Energy, Labs: Biotechnology, Manufacturing: Manufacturing, Media: Media,
Bank: Banking, Capital: Finance, Retail: Retail, Telecom: Telecommunications, Software: Technology,
Consulting: Consulting, Robotics: Machinery, Pharma: Healthcare, Textiles: Apparel, Motors: Manufacturing,
University: Education, Insurance: Insurance
""")  # second word of a company name -> the industry it suggests (if the schema has it)
OPPORTUNITY_PRODUCTS = _items("""
Platform Subscription, Analytics Add-on, Professional Services, Premium Support, Seat Expansion, Renewal,
Data Connector, Onboarding Package, Pilot
""")
OPPORTUNITY_TYPE_WEIGHTS = {
    "New Customer": 55,
    "Existing Customer - Upgrade": 25,
    "Existing Customer - Renewal": 20,
}
NEXT_STEPS = _items("""
Send proposal, Schedule demo, Legal review, Follow up with procurement, Pricing call, Security questionnaire
""")
CAMPAIGN_THEMES = _items("""
Data Privacy, Cloud Migration, AI in Practice, Customer 360, Spring Launch, Partner Summit, Product Roadshow,
Year-End Offer, Security Best Practices, Analytics Deep Dive, Retail Innovation, Healthcare Forum
""")
TASK_SUBJECTS = _pairs("""
Call: Call, Follow up: Other, Send Quote: Email, Send Letter: Other, Email - Intro: Email,
Email - Pricing: Email, Demo prep: Other, Check in after webinar: Call
""")  # subject -> task type
EVENT_SUBJECTS = _items("""
Meeting, Product demo, Discovery call, Quarterly business review, Lunch, Onsite visit, Contract negotiation
""")
DESCRIPTIONS = (
    "Met at the booth; interested in the analytics add-on.",
    "Asked for pricing for 50 seats.\nBudget approved for next quarter.",
    "Existing customer of a competitor, contract ends in six months.",
    "Downloaded the whitepaper twice.",
    "Prefers email; do not call before 10am local time.",
    "Referred by a partner; warm introduction.",
)
HIDDEN_NOTES = (
    "Credit check pending.",
    "Escalated complaint in 2023 - handle with care.",
    "Internal: discount up to 15% approved.",
    "Competitor's reference customer.",
)
FREE_MAIL_DOMAINS = ("mail.example", "inbox.example", "webmail.example")
# country | cities (city:state) | phone | postal code | streets | street style | company suffixes
COUNTRIES = _countries("""
United States | San Francisco:CA, New York:NY, Austin:TX, Chicago:IL, Boston:MA, Seattle:WA, Denver:CO,
    Atlanta:GA | +1 (###) 555-#### | ##### | Market St, Main Street, Oak Avenue, Mission St, Pine Street,
    Broadway | en | Inc., LLC, Corp.
Canada | Toronto:ON, Vancouver:BC, Montréal:QC | +1 (###) 555-#### | A#A #A# | King St W, Queen Street,
    Rue Sainte-Catherine | en | Inc., Ltd.
United Kingdom | London, Manchester, Edinburgh | +44 20 7946 0### | EC# #AA | High Street, Baker Street,
    Deansgate | en | Ltd, plc
Germany | Berlin:BE, München:BY, Hamburg:HH, Köln:NW | +49 30 ####### | ##### | Hauptstraße, Friedrichstraße,
    Schillerstraße, Bahnhofstraße | de | GmbH, AG
France | Paris, Lyon, Toulouse | +33 1 ## ## ## ## | 750## | rue de Rivoli, avenue des Champs-Élysées,
    rue Lafayette | en | SA, SAS
Netherlands | Amsterdam, Rotterdam | +31 20 ### #### | 10## AB | Keizersgracht, Damrak | de | B.V.
Spain | Madrid, Barcelona | +34 91 ### ## ## | 280## | Calle de Alcalá, Passeig de Gràcia | de | S.L., S.A.
Italy | Milano:MI, Roma:RM | +39 02 #### #### | 201## | Via Roma, Corso Buenos Aires | de | S.p.A., S.r.l.
Sweden | Stockholm, Göteborg | +46 8 ### ### ## | 1## ## | Drottninggatan, Kungsgatan | de | AB
Ireland | Dublin, Cork | +353 1 ### #### | D0# A### | Grafton Street, Baggot Street | en | Ltd, DAC
Australia | Sydney:NSW, Melbourne:VIC, Brisbane:QLD | +61 2 5550 #### | 2### | George Street, Collins Street |
    en | Pty Ltd
Japan | Tokyo, Osaka | +81 3 ####-#### | 1##-#### | Marunouchi, Shibuya | jp | K.K.
Brazil | São Paulo:SP, Rio de Janeiro:RJ | +55 11 #####-#### | 0####-### | Avenida Paulista, Rua Augusta |
    de | Ltda., S.A.
India | Bengaluru:KA, Mumbai:MH, Pune:MH | +91 80 #### #### | 560### | MG Road, Residency Road | en |
    Pvt Ltd
Singapore | Singapore | +65 6### #### | ###### | Raffles Place, Orchard Road | en | Pte Ltd
""")
COUNTRY_WEIGHTS = {
    "United States": 40,
    "United Kingdom": 10,
    "Germany": 9,
    "Canada": 6,
    "France": 6,
    "Netherlands": 4,
    "Spain": 3,
    "Italy": 3,
    "Sweden": 2,
    "Ireland": 2,
    "Australia": 5,
    "Japan": 3,
    "Brazil": 3,
    "India": 3,
    "Singapore": 1,
}
COUNTRY_ALIASES = {
    "United States": ("USA", "US", "U.S."),
    "United Kingdom": ("UK", "Great Britain"),
    "Germany": ("Deutschland", "DE"),
}

CONVERT = "convert"  # the timeline's pseudo-object for lead conversions
DEFERRED = frozenset({"CampaignMember", "Task", "Event"})  # what Org.convert_lead scans (see _Seeder.write)
Ref = tuple[str, str, int]  # (field, object, plan index) resolved to an id when the record is written


class _Pick(Generic[T]):
    """A weighted choice among ``values``; labels missing from ``weights`` get ``default``."""

    def __init__(
        self, values: Iterable[T], weights: Mapping[Any, float] | None = None, default: float = 1.0
    ) -> None:
        self.values: tuple[T, ...] = tuple(values)
        self.cum: list[float] = []
        total = 0.0
        for value in self.values:
            total += (weights or {}).get(value, default)
            self.cum.append(total)
        self.total = total

    def __bool__(self) -> bool:
        return bool(self.values) and self.total > 0

    def __call__(self, rng: Random) -> T:
        return self.values[min(bisect(self.cum, rng.random() * self.total), len(self.values) - 1)]

    def mean(self) -> float:
        """The expected value, for numeric values."""
        prev, acc = 0.0, 0.0
        for value, cum in zip(self.values, self.cum, strict=True):
            acc += float(value) * (cum - prev)  # type: ignore[arg-type]
            prev = cum
        return acc / self.total if self.total else 0.0


@lru_cache(maxsize=4096)
def _ascii(text: str) -> str:
    """Lower-case ASCII letters and digits only (for email local parts and domains)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "".join(c for c in folded if c.isalnum())


@lru_cache(maxsize=256)
def _segments(pattern: str) -> tuple[tuple[str, int], ...]:
    """``pattern`` as runs of (``#`` | ``A`` | literal text, length)."""
    return tuple(
        (m.group()[0] if m.group()[0] in "#A" else m.group(), len(m.group()))
        for m in re.finditer(r"#+|A+|[^#A]+", pattern)
    )


def _pattern(rng: Random, pattern: str) -> str:
    """``#`` becomes a digit, ``A`` an upper-case letter."""
    out = []
    for kind, length in _segments(pattern):
        if kind == "#":
            out.append(f"{int(rng.random() * 10**length):0{length}d}")
        elif kind == "A":
            out.append("".join(chr(65 + int(rng.random() * 26)) for _ in range(length)))
        else:
            out.append(kind)
    return "".join(out)


def _store_default_statuses(org: Org) -> list[dict[str, Any]]:
    """The member statuses ``Org._insert`` adds to a new campaign (found on a scratch org), as values.

    The writer creates campaigns without the store, so it writes these itself, right after the
    campaign and at the same second, as the store does.
    """
    scratch = Org(org.schema, Clock())
    try:
        user = scratch.add_user("seed.probe@seed.invalid", "Probe")
        campaign = scratch.create("Campaign", {"Name": "Probe"}, user["Id"])
    except SalesforceError:
        return []
    system = {
        "Id",
        "IsDeleted",
        "CreatedDate",
        "CreatedById",
        "LastModifiedDate",
        "LastModifiedById",
        "SystemModstamp",
        "CampaignId",
    }
    return [
        {k: v for k, v in status.items() if k not in system}
        for status in scratch.tables["CampaignMemberStatus"].values()
        if status["CampaignId"] == campaign["Id"]
    ]


class _Writer:
    """Stores records exactly as ``Org._insert`` would, without its per-record lookups and scans."""

    def __init__(self, org: Org, start: datetime) -> None:
        self.org = org
        self.start = start
        self.counts: Counter[str] = Counter()
        self.statuses: dict[str, dict[str, bool]] = {}  # campaign id -> label -> HasResponded
        self.pending: dict[str, list[dict[str, Any]]] = {}  # deferred records per object
        self._objects: dict[str, tuple[ObjectDef, dict[str, Any], list[FieldDef], bool, list[Any]]] = {}
        self._stamps: dict[int, str] = {}

    def stamp(self, t: int) -> str:
        text = self._stamps.get(t)
        if text is None:
            text = self._stamps[t] = format_datetime(self.start + timedelta(seconds=t))
        return text

    def day(self, t: int) -> date:
        return (self.start + timedelta(seconds=t)).date()

    def _prepared(self, name: str) -> tuple[ObjectDef, dict[str, Any], list[FieldDef], bool, list[Any]]:
        prepared = self._objects.get(name)
        if prepared is None:
            obj = self.org.object(name)
            defaults = {f.name: f.default for f in obj.fields.values() if f.default is not None}
            unique = [f for f in obj.fields.values() if f.unique]
            rules = self.org._rules_for(obj)
            prepared = self._objects[name] = (obj, defaults, unique, obj.field("OwnerId") is not None, rules)
        return prepared

    def insert(
        self, name: str, values: dict[str, Any], actor: str, t: int, defer: bool = False
    ) -> dict[str, Any]:
        """Store one record created at second ``t`` (``defer``: keep it aside until ``flush``)."""
        obj, defaults, unique, owned, rules = self._prepared(name)
        stamp = self.stamp(t)
        record = dict(defaults)
        record.update(values)
        record.update(
            {
                "Id": self.org.ids.next(obj.key_prefix),
                "IsDeleted": False,
                "CreatedDate": stamp,
                "CreatedById": actor,
                "LastModifiedDate": stamp,
                "LastModifiedById": actor,
                "SystemModstamp": stamp,
            }
        )
        if owned and not record.get("OwnerId"):
            record["OwnerId"] = actor
        if obj.name == "CampaignMember":
            self._derive_member(record, t)
        else:
            self.org._derive(obj, record)
        for rule, check in rules:
            if check(record):
                raise RecordRejected(
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message, [rule.field] if rule.field else []
                )
        keys = []
        for fdef in unique:
            if record.get(fdef.name) is not None:
                index = self.org._unique.setdefault((obj.name, fdef.name), {})
                key = Org._unique_key(fdef, record[fdef.name])
                if key in index:
                    raise RecordRejected(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {fdef.name} duplicates "
                        f"value on record with id: {index[key]}",
                        [fdef.name],
                    )
                keys.append((index, key))
        if obj.name == "CampaignMemberStatus":
            labels = self.statuses.setdefault(record["CampaignId"], {})
            if record["Label"] in labels:
                raise RecordRejected("DUPLICATE_VALUE", "duplicate value found: Label", ["Label"])
            labels[record["Label"]] = bool(record.get("HasResponded"))
        for index, key in keys:
            index[key] = record["Id"]
        if defer:
            self.pending.setdefault(obj.name, []).append(record)
        else:
            self.org.tables[obj.name][record["Id"]] = record
        if self.org._journal is not None:  # so that a failed seed is undone, as Org._insert allows
            self.org._journal.setdefault((obj.name, record["Id"]), None)
        self.counts[obj.name] += 1
        return record

    def flush(self) -> None:
        """Put the deferred records in their tables, keeping tables in Id (= creation) order."""
        for name, records in self.pending.items():
            table = self.org.tables[name]
            merged = sorted([*table.values(), *records], key=lambda r: str(r["Id"])[:15])
            table.clear()
            table.update((r["Id"], r) for r in merged)
        self.pending.clear()

    def _derive_member(self, record: dict[str, Any], t: int) -> None:
        """``Org._derive`` for a member, from the statuses seeded here (the store scans them all).

        FirstRespondedDate is the day the member was created (the store would use today).
        """
        labels = self.statuses.get(record.get("CampaignId") or "", {})
        status = record.get("Status")
        if status not in labels:
            raise RecordRejected(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Status: bad value for restricted picklist field: {status}",
                ["Status"],
            )
        record["HasResponded"] = labels[status]
        if labels[status]:
            record["FirstRespondedDate"] = self.day(t).isoformat()


class _Seeder:
    """Plans every record on a timeline (all randomness happens here), then writes them in order."""

    def __init__(self, emu: Emulator, size: int, random_seed: int) -> None:
        self.emu = emu
        self.org = emu.org
        self.size = size
        self.rng = Random(random_seed)
        now = self.org.clock.now().astimezone(UTC)
        self.anchor = now.replace(hour=0, minute=0, second=0, microsecond=0)
        self.start = self.anchor - timedelta(days=WINDOW_DAYS)
        self.span = WINDOW_DAYS * 86400 - 1  # the last second before the anchor
        self.writer = _Writer(self.org, self.start)
        self.steps: list[tuple[int, int, str, int]] = []  # (second, sequence, object, plan index)
        self.values: dict[str, list[dict[str, Any]]] = {}
        self.refs: dict[str, list[tuple[Ref, ...]]] = {}
        self.actors: dict[str, list[str]] = {}
        self.times: dict[str, list[int]] = {}
        self.ids: dict[str, list[str | None]] = {}
        self.created: Counter[str] = Counter()  # users and the queue
        # createable fields per object: name -> (scale for non-int numbers or -1, max length for text or 0)
        self.fields: dict[str, dict[str, tuple[int, int]]] = {}
        for obj in self.org.schema.objects.values():
            self.fields[obj.name] = {
                f.name: (
                    f.scale if f.type in NUMBER_TYPES and f.type != "int" else -1,
                    f.max_length if f.type in TEXT_TYPES else 0,
                )
                for f in obj.fields.values()
                if f.createable and f.name != "Id"
            }
        self.taken: dict[tuple[str, str], set[str]] = {}  # unique values planned so far
        # plan-time facts later steps need
        self.account_info: list[tuple[str, str, str, tuple[str, str | None, str]]] = []  # name, domain, owner
        self.account_contacts: list[list[int]] = []
        self.account_opps: list[list[int]] = []
        self.contact_info: list[tuple[int, str | None, str]] = []  # account, email, owner
        self.lead_info: list[tuple[str | None, str, bool]] = []  # email, owner, private
        self.lead_last: list[int] = []  # latest time of anything planned on the lead
        self.lead_children: dict[int, list[tuple[str, int]]] = {}
        self.conversions: list[tuple[int, str, str, int]] = []  # lead, actor, opportunity name, close in days
        self.converting: set[int] = set()
        self.sales: list[str] = []
        self.private_owner: str | None = None
        self.queue = ""
        self.admin: str = emu.admin_user_id
        self.sync_user: str = emu.integration_user["Id"]
        self.campaign_statuses: list[list[str]] = []
        self.campaign_weight: list[float] = []
        self.default_statuses = _store_default_statuses(self.org) or [dict(s) for s in DEFAULT_STATUSES]
        self.country_pick = _Pick(COUNTRIES, COUNTRY_WEIGHTS)
        self.company_kinds = tuple(COMPANY_KINDS)
        self.salutations = {o: self.pick(o, "Salutation", SALUTATIONS) for o in ("Lead", "Contact")}
        self.lead_sources = {o: self.pick(o, "LeadSource", LEAD_SOURCE_WEIGHTS) for o in ("Lead", "Contact")}
        self.industries = {o: self.pick(o, "Industry", {}) for o in ("Lead", "Account")}

    # -- schema helpers ---------------------------------------------------------------------
    def has(self, obj: str) -> bool:
        return self.org.schema.get(obj) is not None

    def pick(
        self,
        obj: str,
        field: str,
        weights: Mapping[str, float],
        *,
        exclude: Sequence[str] = (),
        default: float = 1.0,
    ) -> _Pick[str]:
        """A weighted choice among the schema's picklist values for ``obj.field`` (empty if none)."""
        schema_obj = self.org.schema.get(obj)
        fdef = schema_obj.field(field) if schema_obj else None
        values = [v for v in (fdef.picklist_values if fdef else ()) if v not in exclude]
        return _Pick(values, weights, default)

    def unique_value(self, obj: str, field: str, make: Callable[[], str]) -> str:
        """A value for a unique field that neither the org nor this seed has used."""
        taken = self.taken.setdefault((obj, field), set())
        index = self.org._unique.get((obj, field), {})
        while True:
            value = make()
            if value.lower() not in taken and value.lower() not in index:
                taken.add(value.lower())
                return value

    # -- timeline -----------------------------------------------------------------------------
    def root_time(self) -> int:
        day = self.rng.randrange(WINDOW_DAYS)
        if self.rng.random() < BUSINESS_HOURS_SHARE:
            second = self.rng.randrange(7 * 3600, 19 * 3600)
        else:
            second = self.rng.randrange(86400)
        return min(day * 86400 + second, self.span)

    def after(self, t0: int, mean_seconds: float) -> int:
        t = t0 + int(self.rng.expovariate(1.0 / mean_seconds))
        return t if t <= self.span else t0 + self.rng.randint(0, self.span - t0)

    def root_times(self, n: int, import_share: float) -> list[int]:
        """``n`` creation times, ``import_share`` of them in same-second list imports; sorted."""
        times: list[int] = []
        batched = int(n * import_share)
        while len(times) < batched:
            t = self.root_time()
            times.extend([t] * min(self.rng.randint(*IMPORT_BATCH), batched - len(times)))
        times.extend(self.root_time() for _ in range(n - len(times)))
        times.sort()
        return times

    def add(self, obj: str, t: int, values: dict[str, Any], actor: str, refs: Iterable[Ref] = ()) -> int:
        """Plan one record at second ``t``: values the schema lacks are dropped, numbers made canonical."""
        fields = self.fields[self.org.object(obj).name]
        clean: dict[str, Any] = {}
        for key, value in values.items():
            kind = fields.get(key)
            if value is None or kind is None:
                continue
            scale, max_length = kind
            if scale >= 0:  # the number as Org._coerce_value stores it
                value = int(value) if value == int(value) and scale == 0 else float(value)
            elif max_length and len(value) > max_length:
                value = value[:max_length].rstrip()
            clean[key] = value
        index = len(self.values.setdefault(obj, []))
        self.values[obj].append(clean)
        self.refs.setdefault(obj, []).append(tuple(r for r in refs if r[0] in fields))
        self.actors.setdefault(obj, []).append(actor)
        self.times.setdefault(obj, []).append(t)
        self.steps.append((t, len(self.steps), obj, index))
        return index

    # -- people and places --------------------------------------------------------------------
    def place(self) -> tuple[str, str | None, str]:
        country = self.country_pick(self.rng)
        city, state = self.rng.choice(COUNTRIES[country].cities)
        return city, state, country

    def address(self, prefix: str, place: tuple[str, str | None, str]) -> dict[str, Any]:
        city, state, country = place
        postal, streets, style = (
            COUNTRIES[country].postal,
            COUNTRIES[country].streets,
            COUNTRIES[country].style,
        )
        street, number = self.rng.choice(streets), self.rng.randint(1, 480)
        line = {"de": f"{street} {number}", "jp": f"{number}-{self.rng.randint(1, 9)} {street}"}.get(
            style, f"{number} {street}"
        )
        if self.rng.random() < 0.1:
            line += f"\nSuite {self.rng.randint(100, 1200)}"
        shown = country
        if country in COUNTRY_ALIASES and self.rng.random() < MESSY_COUNTRY_SHARE:
            shown = self.rng.choice(COUNTRY_ALIASES[country])
        return {
            f"{prefix}Street": line,
            f"{prefix}City": city,
            f"{prefix}State": state,
            f"{prefix}PostalCode": _pattern(self.rng, postal),
            f"{prefix}Country": shown,
        }

    def phone(self, place: tuple[str, str | None, str]) -> str:
        return _pattern(self.rng, COUNTRIES[place[2]].phone)

    def company(self, place: tuple[str, str | None, str]) -> tuple[str, str, str | None]:
        """(name, email domain, suggested industry)."""
        word, kind = self.rng.choice(COMPANY_WORDS), self.rng.choice(self.company_kinds)
        suffixes = COUNTRIES[place[2]].suffixes
        name = f"{word} {kind}" + (f" {self.rng.choice(suffixes)}" if self.rng.random() < 0.7 else "")
        domain = f"{_ascii(word)}{_ascii(kind)[:4]}.example"
        return name, domain, COMPANY_KINDS[kind]

    def person(self, obj: str, domain: str | None, *, email: bool = True) -> dict[str, Any]:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        values: dict[str, Any] = {
            "FirstName": first if rng.random() > 0.02 else None,
            "LastName": last,
            "Title": rng.choice(TITLES) if rng.random() < 0.85 else None,
        }
        if rng.random() < SALUTATION_SHARE and self.salutations[obj]:
            values["Salutation"] = self.salutations[obj](rng)
        if email:
            values["Email"] = self.email(first, last, domain)
        if rng.random() < 0.4:
            values["MobilePhone"] = _pattern(rng, "+1 (###) 555-####")
        if rng.random() < OPTED_OUT_SHARE:
            values["HasOptedOutOfEmail"] = True
        if rng.random() < DO_NOT_CALL_SHARE:
            values["DoNotCall"] = True
        if rng.random() < 0.05:
            values["Description"] = rng.choice(DESCRIPTIONS)
        if rng.random() < NO_SYNC_SHARE:
            values["Sync_To_Marketing__c"] = False
        if rng.random() < SCORE_SHARE:
            values["Score__c"] = rng.randint(0, 100)
        if rng.random() < HIDDEN_NOTES_SHARE:
            values["Hidden_Notes__c"] = rng.choice(HIDDEN_NOTES)
        if self.lead_sources[obj]:
            values["LeadSource"] = self.lead_sources[obj](rng)
        return values

    def email(self, first: str, last: str, domain: str | None) -> str:
        rng = self.rng
        f, lst = _ascii(first) or "info", _ascii(last) or "contact"
        if domain is None:
            return f"{f}{rng.choice(('.', '_', ''))}{lst}{rng.randint(1, 99)}@{rng.choice(FREE_MAIL_DOMAINS)}"
        local = rng.choice((f"{f}.{lst}", f"{f[0]}{lst}", f"{f}", f"{f}_{lst}", f"{f}.{lst}"))
        return f"{local}@{domain}"

    def marketing_id(self, obj: str) -> str:
        return self.unique_value(
            obj, "Marketing_Id__c", lambda: str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        )

    # -- the plan -------------------------------------------------------------------------------
    def users(self) -> None:
        """Sales users, the private owner and the lead queue (reused if an earlier seed made them)."""
        org = self.org
        n_sales = min(
            len(SALES_TEAM), max(MIN_SALES_USERS, MIN_SALES_USERS + self.size // RECORDS_PER_EXTRA_USER)
        )
        wanted = [
            (f"{_ascii(f)}.{_ascii(last)}@{USER_DOMAIN}", f, last, title)
            for f, last, title in SALES_TEAM[:n_sales]
        ]
        private = sorted(self.org.schema.private_owners)
        if private:
            wanted.append((private[0], *PRIVATE_OWNER))
        stamp = self.writer.stamp(0)
        for username, first, last, title in wanted:
            user = org.user_by_username(username)
            if user is None:
                user = org.add_user(
                    username, last, first, profile=SEED_PROFILE, Title=title, Department="Sales"
                )
                user["CreatedDate"] = user["LastModifiedDate"] = user["SystemModstamp"] = stamp
                self.created["User"] += 1
            if private and username == private[0]:
                self.private_owner = user["Id"]
            else:
                self.sales.append(user["Id"])
        queue = next(
            (
                g
                for g in org.tables["Group"].values()
                if g.get("Name") == QUEUE_NAME and g.get("Type") == "Queue" and not g.get("IsDeleted")
            ),
            None,
        )
        if queue is None:
            queue = org.add_queue(QUEUE_NAME)
            queue["CreatedDate"] = queue["LastModifiedDate"] = queue["SystemModstamp"] = stamp
            self.created["Group"] += 1
        self.queue = queue["Id"]

    def industry(self, obj: str, suggested: str | None) -> str | None:
        pick = self.industries[obj]
        if suggested in pick.values and self.rng.random() < 0.7:
            return suggested
        return pick(self.rng) if pick and self.rng.random() < 0.85 else None

    def accounts(self, n: int) -> None:
        rng = self.rng
        types, tiers = (
            self.pick("Account", "Type", ACCOUNT_TYPE_WEIGHTS),
            self.pick("Account", "Tier__c", TIER_WEIGHTS),
        )
        per_account = _Pick(CONTACTS_PER_ACCOUNT, CONTACTS_PER_ACCOUNT)
        times = self.root_times(n, IMPORT_SHARE)
        imported = Counter(times)
        for i, t in enumerate(times):
            place = self.place()
            name, domain, suggested = self.company(place)
            owner = rng.choice(self.sales)
            batch = imported[t] > 1
            values: dict[str, Any] = {
                "Name": name,
                "Industry": self.industry("Account", suggested),
                "OwnerId": owner,
                "Phone": self.phone(place),
                "Website": f"https://www.{domain}" if rng.random() < 0.8 else None,
                "NumberOfEmployees": int(rng.lognormvariate(4.5, 1.6)) + 1,
                "AnnualRevenue": round(rng.lognormvariate(15, 1.5), -3) if rng.random() < 0.6 else None,
                "AccountNumber": f"AC-{rng.randrange(10**6):06d}" if rng.random() < 0.5 else None,
                "Site": rng.choice(("Headquarters", "Branch", None, None)),
                "Description": rng.choice(DESCRIPTIONS) if rng.random() < 0.05 else None,
                **self.address("Billing", place),
            }
            if types:
                values["Type"] = types(rng)
            if tiers and rng.random() < 0.3:
                values["Tier__c"] = tiers(rng)
            if rng.random() < 0.5:
                values.update(
                    {
                        k.replace("Billing", "Shipping"): v
                        for k, v in values.items()
                        if k.startswith("Billing")
                    }
                )
            refs: list[Ref] = []
            if i > 0 and rng.random() < PARENT_ACCOUNT_SHARE:
                refs.append(("ParentId", "Account", rng.randrange(i)))
            self.add("Account", t, values, self.admin if batch else owner, refs)
            self.account_info.append((name, domain, owner, place))
            self.account_contacts.append([])
            self.account_opps.append([])
            for k in range(per_account(rng)):
                ct = t if batch or k == 0 or rng.random() < 0.5 else self.after(t, 86400)
                self.contact(i, ct, place, self.admin if batch else owner)

    def contact(self, account: int, t: int, place: tuple[str, str | None, str], actor: str) -> None:
        rng = self.rng
        _, domain, owner, _ = self.account_info[account]
        values = self.person("Contact", domain, email=rng.random() >= NO_EMAIL_SHARE)
        values.update(
            {
                "OwnerId": owner,
                "Phone": self.phone(place),
                "Department": rng.choice(DEPARTMENTS) if rng.random() < 0.6 else None,
                **self.address("Mailing", place),
            }
        )
        if rng.random() < 0.1:
            values["Birthdate"] = date(
                rng.randint(1955, 2000), rng.randint(1, 12), rng.randint(1, 28)
            ).isoformat()
        if rng.random() < MARKETING_ID_SHARE:
            values["Marketing_Id__c"] = self.marketing_id("Contact")
            actor = self.sync_user
        refs: list[Ref] = [("AccountId", "Account", account)]
        siblings = self.account_contacts[account]
        if siblings and rng.random() < REPORTS_TO_SHARE:
            refs.append(("ReportsToId", "Contact", siblings[0]))
        index = self.add("Contact", t, values, actor, refs)
        siblings.append(index)
        self.contact_info.append((account, values.get("Email"), owner))

    def campaigns(self, n: int) -> None:
        rng = self.rng
        types = self.pick("Campaign", "Type", CAMPAIGN_TYPE_WEIGHTS)
        for t in sorted(self.root_time() for _ in range(n)):
            kind = types(rng) if types else "Other"
            starts = self.writer.day(t) + timedelta(days=rng.randint(-5, 30))
            ends = starts + timedelta(days=rng.choice((1, 1, 2, 14, 30, 60)))
            today = self.anchor.date()
            status = "Completed" if ends < today else "In Progress" if starts <= today else "Planned"
            if rng.random() < 0.03:
                status = "Aborted"
            budget = rng.choice((500, 1000, 2500, 5000, 10000, 25000))
            quarter = (starts.month - 1) // 3 + 1
            values: dict[str, Any] = {
                "Name": f"{rng.choice(CAMPAIGN_THEMES)} {kind} Q{quarter} {starts.year}",
                "Type": kind,
                "Status": status if status in self.pick("Campaign", "Status", {}).values else None,
                "StartDate": starts.isoformat(),
                "EndDate": ends.isoformat(),
                "IsActive": status in ("Planned", "In Progress"),
                "BudgetedCost": budget,
                "ActualCost": round(budget * rng.uniform(0.6, 1.2)) if status == "Completed" else None,
                "ExpectedRevenue": budget * rng.randint(3, 20),
                "OwnerId": rng.choice(self.sales),
                "Description": f"{kind} campaign, {rng.choice(CAMPAIGN_THEMES).lower()} track.",
            }
            index = self.add("Campaign", t, values, values["OwnerId"])
            owner = values["OwnerId"]
            rows = [dict(s) for s in self.default_statuses]  # what the store gives a new campaign
            if kind in EVENT_CAMPAIGN_TYPES and rng.random() < EVENT_STATUS_SHARE:
                have = {row["Label"] for row in rows}
                rows += [
                    {"Label": label, "IsDefault": False, "HasResponded": responded}
                    for label, responded in EVENT_STATUSES
                    if label not in have
                ]
            for order, row in enumerate(rows, 1):
                row.setdefault("SortOrder", order)
                self.add("CampaignMemberStatus", t, row, owner, [("CampaignId", "Campaign", index)])
            self.campaign_statuses.append([row["Label"] for row in rows])
            self.campaign_weight.append(rng.paretovariate(1.5))

    def leads(self, n: int) -> None:
        rng = self.rng
        sources = self.lead_sources["Lead"]
        statuses = self.pick("Lead", "Status", LEAD_STATUS_WEIGHTS, exclude=(CONVERTED_STATUS,))
        ratings = self.pick("Lead", "Rating", RATING_WEIGHTS)
        planned = [sources(rng) if sources else None for _ in range(n)]
        listed = [i for i, s in enumerate(planned) if s == "Purchased List"]
        others = [i for i, s in enumerate(planned) if s != "Purchased List"]
        times = [0] * n
        for i, t in zip(listed, self.root_times(len(listed), IMPORT_SHARE * 3), strict=True):
            times[i] = t
        for i in others:
            times[i] = self.root_time()
        n_private = max(MIN_PRIVATE_LEADS, round(n * PRIVATE_LEAD_SHARE)) if self.private_owner and n else 0
        private = set(rng.sample(range(n), min(n_private, n)))
        emailed = [i for i, info in enumerate(self.contact_info) if info[1]]
        order = sorted(range(n), key=lambda i: (times[i], i))
        for i in order:
            t, source = times[i], planned[i]
            place = self.place()
            shared = emailed and rng.random() < SHARED_EMAIL_SHARE and i not in private
            if shared:
                contact = rng.choice(emailed)
                account, email, _ = self.contact_info[contact]
                name, domain, _, place = self.account_info[account]
                suggested = None
                values = self.person("Lead", domain)
                contact_values = self.values["Contact"][contact]
                values.update(
                    {
                        "FirstName": contact_values.get("FirstName"),
                        "LastName": contact_values["LastName"],
                        "Email": email,
                    }
                )
            else:
                name, domain, suggested = self.company(place)
                has_email = source == "Web" or rng.random() >= NO_EMAIL_SHARE
                values = self.person(
                    "Lead", None if rng.random() < FREE_MAIL_SHARE else domain, email=has_email
                )
            if source is not None:
                values["LeadSource"] = source
            if source == "Web" and not values.get("Email"):
                values["Email"] = self.email(values.get("FirstName") or "web", values["LastName"], domain)
            values.update(
                {
                    "Company": name,
                    "Industry": self.industry("Lead", suggested),
                    "Phone": self.phone(place) if rng.random() < 0.8 else None,
                    "Website": f"https://www.{domain}" if rng.random() < 0.3 else None,
                    "NumberOfEmployees": int(rng.lognormvariate(4, 1.5)) + 1 if rng.random() < 0.5 else None,
                    "AnnualRevenue": round(rng.lognormvariate(14, 1.5), -3) if rng.random() < 0.3 else None,
                    **self.address("", place),
                }
            )
            if statuses:
                values["Status"] = statuses(rng)
            if ratings and rng.random() < 0.4:
                values["Rating"] = ratings(rng)
            if i in private:
                owner = actor = self.private_owner or self.admin
            elif rng.random() < QUEUE_LEAD_SHARE:
                owner, actor = self.queue, self.admin
            else:
                owner = rng.choice(self.sales)
                actor = self.admin if source in ("Web", "Purchased List") else owner
            values["OwnerId"] = owner
            if i not in private and rng.random() < MARKETING_ID_SHARE:
                values["Marketing_Id__c"] = self.marketing_id("Lead")
                actor = self.sync_user
            self.add("Lead", t, values, actor)  # plan indices follow creation time, not ``i``
            self.lead_info.append((values.get("Email"), owner, i in private))
            self.lead_last.append(t)
        # Converted leads are older ones (which also keeps the store's conversion scans short).
        eligible = [i for i, info in enumerate(self.lead_info) if not info[2]]
        n_convert = min(len(eligible), round(n * CONVERTED_LEAD_SHARE))
        cutoff = self.span * CONVERTED_LEAD_AGE
        older = [i for i in eligible if self.times["Lead"][i] <= cutoff]
        chosen = rng.sample(older, min(n_convert, len(older)))
        chosen += rng.sample([i for i in eligible if self.times["Lead"][i] > cutoff], n_convert - len(chosen))
        for i in sorted(chosen):
            self.converting.add(i)
            self.lead_children[i] = []
            if WORKING_STATUS in statuses.values:
                self.values["Lead"][i]["Status"] = WORKING_STATUS

    def opportunities(self) -> None:
        rng = self.rng
        per_account = _Pick(OPPORTUNITIES_PER_ACCOUNT, OPPORTUNITIES_PER_ACCOUNT)
        roles_pick = _Pick(ROLES_PER_OPPORTUNITY, ROLES_PER_OPPORTUNITY)
        stages = self.pick("Opportunity", "StageName", STAGE_WEIGHTS)
        kinds = self.pick("Opportunity", "Type", OPPORTUNITY_TYPE_WEIGHTS)
        sources = self.pick("Opportunity", "LeadSource", LEAD_SOURCE_WEIGHTS)
        role_names = self.pick("OpportunityContactRole", "Role", ROLE_WEIGHTS)
        campaign_times = self.times.get("Campaign", [])
        for account, contacts in enumerate(self.account_contacts):
            name, _, owner, _ = self.account_info[account]
            for _ in range(per_account(rng)):
                t = self.after(self.times["Account"][account], 3 * 86400)
                stage = stages(rng) if stages else None
                close = self.writer.day(t) + timedelta(days=rng.randint(-10, 120) if stage else 30)
                values = {
                    "Name": f"{name} - {rng.choice(OPPORTUNITY_PRODUCTS)}",
                    "StageName": stage,
                    "CloseDate": close.isoformat(),
                    "Amount": round(rng.lognormvariate(9.5, 1.1), -2) + 0.0,
                    "Probability": STAGE_PROBABILITY.get(stage or ""),
                    "OwnerId": owner,
                    "Type": kinds(rng) if kinds else None,
                    "LeadSource": sources(rng) if sources and rng.random() < 0.6 else None,
                    "NextStep": rng.choice(NEXT_STEPS) if rng.random() < 0.4 else None,
                }
                refs: list[Ref] = [("AccountId", "Account", account)]
                earlier = [c for c, ct in enumerate(campaign_times) if ct <= t]
                if earlier and rng.random() < 0.15:
                    refs.append(("CampaignId", "Campaign", rng.choice(earlier)))
                opp = self.add("Opportunity", t, values, owner, refs)
                self.account_opps[account].append(opp)
                chosen = rng.sample(contacts, min(roles_pick(rng), len(contacts)))
                for k, contact in enumerate(chosen):
                    rt = max(t, self.times["Contact"][contact])
                    self.add(
                        "OpportunityContactRole",
                        rt,
                        {"Role": role_names(rng) if role_names else None, "IsPrimary": k == 0},
                        owner,
                        [("OpportunityId", "Opportunity", opp), ("ContactId", "Contact", contact)],
                    )

    def people(self) -> list[tuple[str, int]]:
        out = [("Contact", i) for i in range(len(self.contact_info))]
        out += [("Lead", i) for i, info in enumerate(self.lead_info) if not info[2]]
        return out

    def person_time(self, kind: str, index: int) -> int:
        return self.times[kind][index]

    def note_child(self, kind: str, person: int, obj: str, index: int, t: int) -> None:
        if kind == "Lead" and person in self.converting:
            self.lead_children[person].append((obj, index))
            self.lead_last[person] = max(self.lead_last[person], t)

    def members(self, people: list[tuple[str, int]], n: int) -> None:
        rng = self.rng
        if not self.campaign_statuses or not people:
            return
        campaigns = _Pick(range(len(self.campaign_statuses)), dict(enumerate(self.campaign_weight)))
        status_picks = [_Pick(labels, MEMBER_STATUS_WEIGHTS) for labels in self.campaign_statuses]
        seen: set[tuple[int, str, int]] = set()
        attempts = 0
        planned = 0
        while planned < n and attempts < n * 5:
            attempts += 1
            campaign = campaigns(rng)
            kind, person = rng.choice(people)
            if (campaign, kind, person) in seen:
                continue
            seen.add((campaign, kind, person))
            t = self.after(max(self.times["Campaign"][campaign], self.person_time(kind, person)), 2 * 86400)
            index = self.add(
                "CampaignMember",
                t,
                {"Status": status_picks[campaign](rng)},
                self.admin,
                [("CampaignId", "Campaign", campaign), (f"{kind}Id", kind, person)],
            )
            self.note_child(kind, person, "CampaignMember", index, t)
            planned += 1

    def activity_target(self, kind: str, person: int, t: int) -> tuple[int, list[Ref], str]:
        """(time, references, owner) for a task or event on a person: WhatId only for contacts."""
        rng = self.rng
        refs: list[Ref] = [("WhoId", kind, person)]
        if kind == "Contact":
            account, _, owner = self.contact_info[person]
            opps = self.account_opps[account]
            roll = rng.random()
            if opps and roll < 0.3:
                opp = rng.choice(opps)
                t = max(t, self.times["Opportunity"][opp])
                refs.append(("WhatId", "Opportunity", opp))
            elif roll < 0.85:
                refs.append(("WhatId", "Account", account))
        else:
            owner = self.lead_info[person][1]
        if not owner.startswith("005") or owner == self.private_owner:
            owner = rng.choice(self.sales)
        return t, refs, owner

    def tasks(self, people: list[tuple[str, int]], n: int) -> None:
        rng = self.rng
        statuses = self.pick("Task", "Status", TASK_STATUS_WEIGHTS)
        priorities = self.pick("Task", "Priority", PRIORITY_WEIGHTS)
        types = set(self.pick("Task", "Type", {}).values)
        subtypes = set(self.pick("Task", "TaskSubtype", {}).values)
        subjects = tuple(TASK_SUBJECTS)
        for _ in range(n if people else 0):
            kind, person = rng.choice(people)
            t0 = self.after(self.person_time(kind, person), 2 * 86400)
            t, refs, owner = self.activity_target(kind, person, t0)
            subject = rng.choice(subjects)
            task_type = TASK_SUBJECTS[subject]
            due = self.writer.day(t) + timedelta(days=rng.randint(0, 14))
            values = {
                "Subject": subject,
                "Status": statuses(rng) if statuses else None,
                "Priority": priorities(rng) if priorities else None,
                "ActivityDate": due.isoformat(),
                "Type": task_type if task_type in types else None,
                "OwnerId": owner,
                "TaskSubtype": (
                    task_type if task_type in subtypes else "Task" if "Task" in subtypes else None
                ),
                "Description": rng.choice(DESCRIPTIONS) if rng.random() < 0.1 else None,
            }
            index = self.add("Task", t, values, owner, refs)
            self.note_child(kind, person, "Task", index, t)

    def events(self, people: list[tuple[str, int]], n: int) -> None:
        rng = self.rng
        types = set(self.pick("Event", "Type", {}).values)
        for _ in range(n if people else 0):
            kind, person = rng.choice(people)
            t0 = self.after(self.person_time(kind, person), 2 * 86400)
            t, refs, owner = self.activity_target(kind, person, t0)
            created = self.start + timedelta(seconds=t)
            begin = (created + timedelta(hours=rng.randint(2, 24 * 14))).replace(
                minute=rng.choice((0, 30)), second=0
            )
            all_day = rng.random() < 0.03
            if all_day:
                begin = begin.replace(hour=0, minute=0)
            minutes = 1440 if all_day else rng.choice((30, 30, 45, 60, 60, 90))
            place = self.place()
            values = {
                "Subject": rng.choice(EVENT_SUBJECTS),
                "StartDateTime": format_datetime(begin),
                "EndDateTime": format_datetime(begin + timedelta(minutes=minutes)),
                "ActivityDateTime": format_datetime(begin),
                "ActivityDate": begin.date().isoformat(),
                "DurationInMinutes": minutes,
                "IsAllDayEvent": all_day,
                "OwnerId": owner,
                "Type": "Meeting" if "Meeting" in types else None,
                "Location": rng.choice(("Zoom", "Microsoft Teams", "Phone", place[0])),
            }
            index = self.add("Event", t, values, owner, refs)
            self.note_child(kind, person, "Event", index, t)

    def subscriptions(self, n: int) -> None:
        if not self.has("Subscription__c") or not self.contact_info:
            return
        rng = self.rng
        plans = self.pick("Subscription__c", "Plan__c", PLAN_WEIGHTS)
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        for _ in range(n):
            contact = rng.randrange(len(self.contact_info))
            t = self.after(self.times["Contact"][contact], 4 * 86400)
            plan = plans(rng) if plans else None
            low, high = PLAN_SEATS.get(plan or "", (1, 10))
            key = self.unique_value(
                "Subscription__c",
                "External_Key__c",
                lambda: "SUB-" + "".join(rng.choice(alphabet) for _ in range(10)),
            )
            renewal = self.writer.day(t) + timedelta(days=rng.randint(30, 365))
            contact_values = self.values["Contact"][contact]
            who = " ".join(p for p in (contact_values.get("FirstName"), contact_values["LastName"]) if p)
            values = {
                "Name": f"{plan or 'Standard'} - {who}",
                "Plan__c": plan,
                "Seats__c": rng.randint(low, high),
                "Renewal_Date__c": renewal.isoformat(),
                "Active__c": rng.random() < 0.9,
                "External_Key__c": key,
                "OwnerId": self.contact_info[contact][2],
            }
            self.add("Subscription__c", t, values, self.sync_user, [("Contact__c", "Contact", contact)])

    def plan_conversions(self) -> None:
        rng = self.rng
        for lead in sorted(self.converting):
            t = self.after(self.lead_last[lead], CONVERSION_DELAY)
            owner = self.lead_info[lead][1]
            actor = owner if owner.startswith("005") else self.admin
            company = self.values["Lead"][lead].get("Company") or "Converted lead"
            name = f"{company} - {rng.choice(OPPORTUNITY_PRODUCTS)}"
            self.conversions.append((lead, actor, name, rng.randint(14, 120)))
            self.steps.append((t, len(self.steps), CONVERT, len(self.conversions) - 1))

    def plan(self) -> None:
        self.users()
        remaining = self.size - sum(self.created.values())
        if remaining <= 0:
            return
        mean_contacts = _Pick(CONTACTS_PER_ACCOUNT, CONTACTS_PER_ACCOUNT).mean()
        lead_ratio = LEAD_SHARE / (1 - LEAD_SHARE)
        people = mean_contacts * (1 + lead_ratio)
        opps = _Pick(OPPORTUNITIES_PER_ACCOUNT, OPPORTUNITIES_PER_ACCOUNT).mean()
        roles = min(mean_contacts, _Pick(ROLES_PER_OPPORTUNITY, ROLES_PER_OPPORTUNITY).mean())
        subs = SUBSCRIPTIONS_PER_CONTACT if self.has("Subscription__c") else 0.0
        per_account = (
            1
            + mean_contacts * (1 + subs)
            + mean_contacts * lead_ratio * (1 + CONVERTED_LEAD_SHARE * 4)
            + opps * (1 + roles)
            + people / PEOPLE_PER_CAMPAIGN * 4
            + people * (MEMBERS_PER_PERSON + TASKS_PER_PERSON + EVENTS_PER_PERSON)
        )
        self.accounts(max(1, round(remaining / per_account)))
        n_contacts = len(self.contact_info)
        n_people = n_contacts / (1 - LEAD_SHARE)
        self.campaigns(max(MIN_CAMPAIGNS, round(n_people / PEOPLE_PER_CAMPAIGN)))
        self.leads(round(n_contacts * lead_ratio))
        self.opportunities()
        people_list = self.people()
        self.members(people_list, round(len(people_list) * MEMBERS_PER_PERSON))
        self.events(people_list, round(len(people_list) * EVENTS_PER_PERSON))
        self.subscriptions(round(n_contacts * subs))
        planned = len(self.steps) + 4 * len(self.converting)
        self.tasks(people_list, max(0, remaining - planned))
        self.plan_conversions()

    # -- writing ------------------------------------------------------------------------------
    def write(self) -> None:
        """Write every planned record in timeline order.

        ``Org.convert_lead`` scans every member, task and event for the lead's; so that
        conversions stay cheap, members, tasks and events not on a lead still to be converted
        are kept aside (ids already given, in order) and put in their tables at the end.
        """
        self.ids = {obj: [None] * len(values) for obj, values in self.values.items()}
        insert = self.writer.insert
        keep = {child for children in self.lead_children.values() for child in children}
        try:
            for t, _, obj, index in sorted(self.steps):
                if obj == CONVERT:
                    self.convert(index, t)
                    continue
                values = self.values[obj][index]
                for field, target, target_index in self.refs[obj][index]:
                    rid = self.ids[target][target_index]
                    if rid is None:
                        raise RuntimeError(f"seed plan error: {obj} refers to {target} #{target_index} early")
                    values[field] = rid
                defer = obj in DEFERRED and (obj, index) not in keep
                self.ids[obj][index] = insert(obj, values, self.actors[obj][index], t, defer)["Id"]
        finally:
            self.writer.flush()  # also on failure, so that the transaction's undo finds (and unindexes) them

    def convert(self, index: int, t: int) -> None:
        """Convert through the store, then date everything the conversion touched at second ``t``."""
        lead_index, actor, opportunity_name, close_in = self.conversions[index]
        org = self.org
        lead_id = self.ids["Lead"][lead_index]
        assert lead_id is not None
        result = org.convert_lead(lead_id, actor, opportunity_name=opportunity_name)
        stamp = self.writer.stamp(t)
        day = self.writer.day(t)
        created = [org.tables["Account"][result.account_id], org.tables["Contact"][result.contact_id]]
        if result.opportunity_id:
            opportunity = org.tables["Opportunity"][result.opportunity_id]
            opportunity["CloseDate"] = (day + timedelta(days=close_in)).isoformat()
            created.append(opportunity)
            role = next(reversed(org.tables["OpportunityContactRole"].values()))
            if role.get("OpportunityId") == result.opportunity_id:
                created.append(role)
        for record in created:
            record["CreatedDate"] = record["LastModifiedDate"] = record["SystemModstamp"] = stamp
            self.writer.counts[self.org.schema.for_id(record["Id"]).name] += 1  # type: ignore[union-attr]
        lead = org.tables["Lead"][lead_id]
        lead["ConvertedDate"] = day.isoformat()
        touched = [lead] + [
            org.tables[obj][self.ids[obj][i] or ""] for obj, i in self.lead_children[lead_index]
        ]
        for record in touched:
            record["LastModifiedDate"] = record["SystemModstamp"] = stamp


def seed(emu: Emulator, size: int, random_seed: int = 42) -> dict[str, Any]:
    """Fill ``emu``'s org with about ``size`` realistic records; returns what was created.

    ``{"size": total, "seed": random_seed, "objects": {"Lead": n, ...}, "seconds": elapsed}``.
    The same ``size`` and ``random_seed`` give the same records and ids in a fresh emulator
    (on the same UTC day: stamps are relative to the org clock's current day).
    """
    if not isinstance(size, int) or size < 1:
        raise SalesforceError(400, "INVALID_FIELD", f"size must be a positive integer, not {size!r}")
    started = time.perf_counter()
    with emu.org.transaction():  # all or nothing
        seeder = _Seeder(emu, size, random_seed)
        seeder.plan()
        seeder.write()
    counts = seeder.created + seeder.writer.counts
    objects = {name: counts[name] for name in sorted(counts)}
    return {
        "size": sum(objects.values()),
        "seed": random_seed,
        "objects": objects,
        "seconds": round(time.perf_counter() - started, 3),
    }
