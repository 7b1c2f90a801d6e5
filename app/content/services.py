"""Content blocks: writing them (the console and the API share these), choosing them for a page from a
per-process copy of the creditor's running blocks, and what customers did (seen, clicked, interested).

Services add and flush; the caller commits. Every change of a block raises its creditor's
`content_version` (and so its `updated_at`): the bill page's cached render is keyed by the creditor's
row, and `active_blocks` by the version, so a change shows at the next request in every process and a
rendered page reads no block from the database.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select, update
from sqlalchemy.orm import selectinload

from app.billing.models import Customer, Invoice, InvoiceStatus, Reminder
from app.content import markup
from app.content.models import Action, Block, Exposure, Kind, Lead, Placement, Variant
from app.content.targeting import (
    LIST_RULES,
    NUMBER_RULES,
    STATUSES,
    Audience,
    BlockView,
    Shown,
    VariantView,
    bill_statuses,
    choose,
)
from app.core.images import raster_kind
from app.creditors.models import Creditor
from app.dunning.models import Notice, NoticeStatus, StepKind
from app.errors import InvalidData
from app.events import services as events
from app.events.catalogue import data_for
from app.extensions import db
from app.links.models import CHANNELS as LINK_CHANNELS

#: The languages a block's texts are written in (the portal's).
LOCALES = ("en", "nb", "de")
IMAGE_MAX_BYTES = 2 * 1024 * 1024
IMAGE_MAX_WIDTH = 720
IMAGE_MAX_HEIGHT = 480
NAME_MAX = 100
VARIANT_NAME = re.compile(r"^[A-Za-z0-9 _-]{1,40}$")
TAG = re.compile(r"^[A-Za-z0-9_.:-]{1,40}$")
TAGS_MAX = 20
MAX_BLOCKS_PER_PAGE = 5
#: Blocks kept per process: (creditor, version, mode) -> its running blocks.
CACHE_ENTRIES = 512


# --- the per-process copy of a creditor's running blocks ------------------------------------------------


class _BlockCache:
    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict[tuple, tuple[BlockView, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> tuple[BlockView, ...] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: tuple, blocks: tuple[BlockView, ...]) -> None:
        with self._lock:
            self._entries[key] = blocks
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_cache = _BlockCache(CACHE_ENTRIES)


def _key(creditor: Creditor) -> tuple:
    # The version, and the row's updated_at, which a new creditor row never shares with an old one of
    # the same id (a rolled-back test, a restored database).
    return creditor.id, creditor.content_version, creditor.updated_at


def active_blocks(creditor: Creditor) -> tuple[BlockView, ...]:
    """The creditor's blocks not stopped, with their running variants: read once per process and version
    (two statements on a miss, none on a hit)."""
    key = _key(creditor)
    found = _cache.get(key)
    if found is None:
        found = tuple(_view(block) for block in db.session.scalars(
            select(Block).options(selectinload(Block.variants))
            .where(Block.creditor_id == creditor.id, Block.stopped_at.is_(None)).order_by(Block.id)))
        _cache.put(key, found)
    return found


def _view(block: Block) -> BlockView:
    variants = tuple(VariantView(v.id, v.name, v.weight, v.texts or {}) for v in block.variants
                     if v.stopped_at is None)
    return BlockView(block.id, block.public_id, block.kind, tuple(block.placements or ()), block.priority,
                     block.starts_on, block.ends_on, block.action, block.target_url, dict(block.targeting or {}),
                     block.cap_days, block.image_version, block.livemode, variants)


# --- who the customer is, for the rules --------------------------------------------------------------


def seen_days(customer: Customer) -> dict[str, int]:
    return {key: int(value[1]) for key, value in (customer.content_seen or {}).items()
            if isinstance(value, list) and len(value) == 2}


def audience_for(invoice: Invoice, placement: str, locale: str, today: date, *, resolutions: Any = None,
                 other_bills: Sequence[Invoice] = (), reminded: bool = False, channel: str | None = None) -> Audience:
    """The audience of `invoice`'s page or message. `resolutions`: the bill's self-service state
    (`resolutions.services.SelfService`, or None when it has none); `other_bills`: the customer's other
    bills owed; `reminded`: whether the bill had a reminder after its due date; `channel`: the channel of
    the link the customer came by (the grant's), or the message's."""
    customer = invoice.customer
    paid = invoice.status == InvoiceStatus.PAID or invoice.balance <= 0
    overdue = not paid and invoice.due_date < today
    found = resolutions
    open_resolution = found is not None and any(
        getattr(found, name, None) is not None for name in ("open_dispute", "promise", "deferral", "plan",
                                                            "plan_request"))
    plan = found is not None and (found.plan is not None or found.plan_request is not None)
    difficulty = (open_resolution or invoice.status in (InvoiceStatus.IN_COLLECTION, InvoiceStatus.DISPUTED,
                                                        InvoiceStatus.ON_HOLD)
                  or (reminded and (overdue or paid)) or any(other.due_date < today for other in other_bills))
    return Audience(
        placement=placement, locale=locale, country=(customer.country or invoice.creditor.country),
        statuses=bill_statuses(paid=paid, overdue=overdue, days_to_due=(invoice.due_date - today).days, plan=plan),
        amount=invoice.total if paid else invoice.balance, bills=(0 if paid else 1) + len(other_bills),
        livemode=invoice.livemode, tags=frozenset(customer.content_tags or ()),
        product_codes=frozenset(line.product_code for line in invoice.lines if line.product_code),
        in_difficulty=difficulty, overdue_unpaid=overdue, no_offers=customer.no_offers, seen_days=seen_days(customer),
        channel=channel)


def was_reminded(invoice_id: int) -> bool:
    """Whether the bill had a reminder after its due date: ours (a notice that went out) or the creditor's
    own, reported through the API. One statement (the receipt page and e-mails; the bill page needs none:
    an overdue bill shows information only anyway)."""
    ours = select(Notice.id).where(Notice.invoice_id == invoice_id, Notice.kind.in_(StepKind.AFTER_DUE),
                                   Notice.status.not_in((NoticeStatus.SKIPPED, NoticeStatus.PAID_BEFORE)))
    theirs = select(Reminder.id).where(Reminder.invoice_id == invoice_id)
    return bool(db.session.scalar(select(ours.exists() | theirs.exists())))


def blocks_for(invoice: Invoice, audience: Audience, today: date) -> list[Shown]:
    """The blocks `invoice`'s customer sees here (no statement when the creditor's blocks are cached)."""
    creditor = invoice.creditor
    if not creditor.content_version:
        return []  # a creditor that never wrote a block: nothing to read
    return choose(active_blocks(creditor), audience, today=today, max_blocks=creditor.content_max_blocks,
                  customer_key=str(invoice.customer_id))


# --- the signed references of the page's impressions, clicks and leads ---------------------------------


@dataclass(frozen=True)
class Ref:
    block_id: int
    variant_id: int
    invoice_id: int
    placement: str


_PLACEMENT_CODES: dict[str, str] = {Placement.BILL: "b", Placement.RECEIPT: "r", Placement.EMAIL: "e"}
_CODE_PLACEMENTS = {code: placement for placement, code in _PLACEMENT_CODES.items()}
SALT = "content.ref"


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=SALT)


def make_ref(secret: str, shown: Shown, invoice_id: int, placement: str) -> str:
    """A signed, stable reference to this block, variant and bill (the same on every render, so it may sit
    in a cached page): it names no target, so the redirect can only go to the block's own."""
    return _serializer(secret).dumps([shown.block.id, shown.variant.id, invoice_id, _PLACEMENT_CODES[placement]])


def read_ref(secrets_: Iterable[str], token: str) -> Ref | None:
    """The reference, if one of the keys signed it (the newest signs, every one verifies); else None."""
    for secret in secrets_:
        try:
            found = _serializer(secret).loads(token)
        except BadSignature:
            continue
        if (isinstance(found, list) and len(found) == 4 and all(isinstance(n, int) for n in found[:3])
                and found[3] in _CODE_PLACEMENTS):
            return Ref(found[0], found[1], found[2], _CODE_PLACEMENTS[found[3]])
        return None
    return None


def _live_pair(ref: Ref) -> tuple[Block, Variant, Invoice] | None:
    """The block, variant and bill a reference names, if they belong together and the block runs."""
    block = db.session.get(Block, ref.block_id)
    variant = db.session.get(Variant, ref.variant_id)
    invoice = db.session.get(Invoice, ref.invoice_id)
    if block is None or variant is None or invoice is None or variant.block_id != block.id \
            or block.creditor_id != invoice.creditor_id or block.livemode != invoice.livemode:
        return None
    return block, variant, invoice


def _exposure(block: Block, variant: Variant, invoice: Invoice, placement: str) -> Exposure:
    found = db.session.scalar(select(Exposure).where(Exposure.block_id == block.id,
                                                     Exposure.invoice_id == invoice.id))
    if found is None:
        found = Exposure(block_id=block.id, variant_id=variant.id, invoice_id=invoice.id,
                         customer_id=invoice.customer_id, placement=placement, days_seen=0, clicks=0)
        db.session.add(found)
    return found


def record_seen(ref: Ref, *, now: datetime, today: date) -> bool:
    """The block was seen on the bill (the page's impression): counted once per bill and day, and the
    customer's days for the cap raised without changing the customer row's `updated_at` (the cached page
    of today stays; tomorrow's reads the count)."""
    found = _live_pair(ref)
    if found is None:
        return False
    block, variant, invoice = found
    exposure = _exposure(block, variant, invoice, ref.placement)
    if exposure.last_seen_on == today:
        return True
    exposure.first_seen_at = exposure.first_seen_at or now
    exposure.last_seen_on, exposure.days_seen = today, (exposure.days_seen or 0) + 1
    customer = invoice.customer
    seen = dict(customer.content_seen or {})
    last, days = (seen.get(str(block.id)) or [None, 0])[:2]
    if last != today.isoformat():
        seen[str(block.id)] = [today.isoformat(), int(days) + 1]
        db.session.execute(update(Customer).where(Customer.id == customer.id)
                           .values(content_seen=seen, updated_at=Customer.updated_at)
                           .execution_options(synchronize_session=False))
    db.session.flush()
    return True


def record_click(ref: Ref, *, now: datetime) -> str | None:
    """A click on the block's link: counted, and the block's own target returned (None: no link to go to,
    a stopped block, or a reference that does not hold together)."""
    found = _live_pair(ref)
    if found is None:
        return None
    block, variant, invoice = found
    if block.action != Action.LINK or not block.target_url or block.stopped_at is not None:
        return None
    exposure = _exposure(block, variant, invoice, ref.placement)
    exposure.clicks = (exposure.clicks or 0) + 1
    exposure.first_click_at = exposure.first_click_at or now
    db.session.flush()
    return block.target_url


def record_lead(ref: Ref, *, now: datetime) -> Lead | None:
    """"I am interested": one lead per block and bill (again: the first one), told to the creditor as
    `lead.created` in this transaction. None when the block takes no leads or is stopped."""
    found = _live_pair(ref)
    if found is None:
        return None
    block, variant, invoice = found
    if block.action != Action.INTEREST or block.stopped_at is not None:
        return None
    lead = db.session.scalar(select(Lead).where(Lead.block_id == block.id, Lead.invoice_id == invoice.id))
    if lead is not None:
        return lead
    lead = Lead(public_id=events.new_public_id("lead"), creditor_id=block.creditor_id, block_id=block.id,
                variant_id=variant.id, invoice_id=invoice.id, customer_id=invoice.customer_id,
                livemode=invoice.livemode, created_at=now)
    db.session.add(lead)
    exposure = _exposure(block, variant, invoice, ref.placement)
    exposure.clicks = (exposure.clicks or 0) + 1
    exposure.first_click_at = exposure.first_click_at or now
    db.session.flush()
    events.record(block.creditor_id, "lead.created",
                  data_for("lead.created", invoice, {"id": lead.public_id, "block": block.public_id,
                                                     "block_name": block.name, "variant": variant.name}),
                  invoice_id=invoice.id, livemode=invoice.livemode, now=now)
    return lead


def set_no_offers(customer: Customer, no_offers: bool) -> bool:
    """"No offers, please" (or offers again): remembered on the customer. Whether it changed."""
    if customer.no_offers == no_offers:
        return False
    customer.no_offers = no_offers
    db.session.flush()
    return True


def set_tags(customer: Customer, tags: Iterable[str]) -> list[str]:
    """The creditor's tags for the customer (replacing the ones before), or InvalidData."""
    clean = sorted(dict.fromkeys(t.strip() for t in tags))
    if len(clean) > TAGS_MAX or not all(TAG.match(t) for t in clean):
        raise InvalidData({"tags": f"at most {TAGS_MAX} tags of letters, digits and _.:- (1-40 characters)"})
    customer.content_tags = clean
    db.session.flush()
    return clean


# --- writing blocks --------------------------------------------------------------------------------


def _bump(creditor: Creditor) -> None:
    creditor.content_version = (creditor.content_version or 0) + 1


def _url_ok(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname) and not parts.username and not parts.password \
        and len(url) <= 500 and url.isprintable() and " " not in url


def _whole_in(value: Any, lowest: int, highest: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lowest <= value <= highest


def check_block(given: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """The block's settings and its texts per language from what was given, checked: (settings, texts),
    or InvalidData naming each field's problem (a code the console and the API put in words).

    `given`: name, kind, placements, priority, starts_on, ends_on, action, target_url, cap_days, the rule
    lists (LIST_RULES) and numbers (NUMBER_RULES, amounts in minor units), texts {locale: {title, body, cta}}."""
    errors: dict[str, str] = {}
    name = str(given.get("name") or "").strip()
    if not name or len(name) > NAME_MAX or markup.plain_problem(name):
        errors["name"] = "required"
    kind = given.get("kind")
    if kind not in Kind.values():
        errors["kind"] = "choice"
    placements = list(dict.fromkeys(given.get("placements") or ()))
    if not placements or not all(p in Placement.values() for p in placements):
        errors["placements"] = "choice"
    priority = given.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool) or not -1000 <= priority <= 1000:
        errors["priority"] = "priority"
    starts_on, ends_on = given.get("starts_on"), given.get("ends_on")
    if any(day is not None and not isinstance(day, date) for day in (starts_on, ends_on)):
        errors["ends_on"] = "date"
    elif starts_on and ends_on and ends_on < starts_on:
        errors["ends_on"] = "order"
    action = given.get("action") or Action.NONE
    target_url = (given.get("target_url") or "").strip() or None
    if action not in Action.values():
        errors["action"] = "choice"
    elif action == Action.LINK and (not target_url or not _url_ok(target_url)):
        errors["target_url"] = "url"
    elif action != Action.LINK and target_url:
        errors["target_url"] = "no_link"
    cap_days = given.get("cap_days")
    if cap_days is not None and not _whole_in(cap_days, 1, 365):
        errors["cap_days"] = "cap"
    targeting: dict[str, Any] = {}
    for rule in LIST_RULES:
        values = [str(v).strip() for v in (given.get(rule) or ()) if str(v).strip()]
        if (rule == "statuses" and not all(v in STATUSES for v in values)) \
                or (rule == "languages" and not all(v in LOCALES for v in values)) \
                or (rule == "channels" and not all(v in LINK_CHANNELS for v in values)) \
                or (rule == "countries" and not all(re.fullmatch(r"[A-Z]{2}", v) for v in values)) \
                or not all(TAG.match(v) for v in values) or len(values) > 50:
            errors[rule] = "list"
        elif values:
            targeting[rule] = sorted(dict.fromkeys(values))
    for rule in NUMBER_RULES:
        value = given.get(rule)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > 10**12:
            errors[rule] = "number"
        else:
            targeting[rule] = value
    for low, high in (("amount_min", "amount_max"), ("bills_min", "bills_max")):
        if low in targeting and high in targeting and targeting[high] < targeting[low]:
            errors[high] = "order"
    texts = check_texts(given.get("texts") or {}, errors, needs_cta=action in (Action.LINK, Action.INTEREST))
    if errors:
        raise InvalidData(errors)
    settings = {"name": name, "kind": kind, "placements": placements, "priority": priority,
                "starts_on": starts_on, "ends_on": ends_on, "action": action, "target_url": target_url,
                "cap_days": cap_days, "targeting": targeting}
    return settings, texts


def check_texts(given: Mapping[str, Any], errors: dict[str, str], *, needs_cta: bool) -> dict[str, dict[str, str]]:
    """The texts per language, each with its sanitised body (`html`); problems go to `errors` as
    `<locale>_<field>`. A language left empty is not written (its customers do not see the block)."""
    texts: dict[str, dict[str, str]] = {}
    for locale, text in given.items():
        if locale not in LOCALES or not isinstance(text, Mapping):
            errors[f"texts.{locale}"] = "locale"
            continue
        title = str(text.get("title") or "").strip()
        body = str(text.get("body") or "").strip()
        cta = str(text.get("cta") or "").strip()
        if not (title or body or cta):
            continue
        if not title or len(title) > markup.TITLE_MAX or markup.plain_problem(title):
            errors[f"{locale}_title"] = "title"
        if len(body) > markup.BODY_MAX or markup.body_problem(body):
            errors[f"{locale}_body"] = "body"
        if len(cta) > markup.CTA_MAX or markup.plain_problem(cta) or (needs_cta and not cta):
            errors[f"{locale}_cta"] = "cta"
        texts[locale] = {"title": title, "body": body, "html": markup.render(body), "cta": cta}
    if not texts and not any(key.startswith(LOCALES) for key in errors):
        errors["texts"] = "required"
    return texts


def _apply(block: Block, settings: Mapping[str, Any]) -> dict[str, list]:
    changes: dict[str, list] = {}
    for name, value in settings.items():
        before = getattr(block, name)
        if before != value:
            changes[name] = [_plain(before), _plain(value)]
            setattr(block, name, value)
    return changes


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def create_block(creditor: Creditor, given: Mapping[str, Any], *, livemode: bool = True) -> Block:
    """A new block with its first variant ("A"), or InvalidData (nothing made)."""
    settings, texts = check_block(given)
    block = Block(public_id=events.new_public_id("blk"), creditor_id=creditor.id, livemode=livemode, **settings)
    block.variants.append(Variant(name="A", weight=1, texts=texts))
    db.session.add(block)
    _bump(creditor)
    db.session.flush()
    return block


def update_block(creditor: Creditor, block: Block, given: Mapping[str, Any]) -> dict[str, list]:
    """Change a block's settings and its first variant's texts; the changes (before, after), texts by
    language only. InvalidData changes nothing."""
    settings, texts = check_block(given)
    changes = _apply(block, settings)
    first = block.variants[0]
    if (first.texts or {}) != texts:
        changes["texts"] = [sorted(first.texts or {}), sorted(texts)]
        first.texts = texts
    if changes:
        _bump(creditor)
    db.session.flush()
    return changes


def add_variant(creditor: Creditor, block: Block, name: str, weight: int, texts_given: Mapping[str, Any]) -> Variant:
    """Another variant of the block's texts (an experiment), or InvalidData."""
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not VARIANT_NAME.match(name) or any(v.name == name for v in block.variants):
        errors["variant_name"] = "variant_name"
    if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 100:
        errors["weight"] = "weight"
    texts = check_texts(texts_given, errors, needs_cta=block.action in (Action.LINK, Action.INTEREST))
    if errors:
        raise InvalidData(errors)
    variant = Variant(name=name, weight=weight, texts=texts)
    block.variants.append(variant)
    _bump(creditor)
    db.session.flush()
    return variant


def set_variant_stopped(creditor: Creditor, variant: Variant, stopped: bool, now: datetime) -> bool:
    """Stop a variant (its customers move to the others) or run it again. Whether it changed."""
    if (variant.stopped_at is not None) == stopped:
        return False
    variant.stopped_at = now if stopped else None
    _bump(creditor)
    db.session.flush()
    return True


def set_stopped(creditor: Creditor, block: Block, stopped: bool, now: datetime) -> bool:
    """Stop a block (shown nowhere from the next request; its leads and results stay) or run it again."""
    if (block.stopped_at is not None) == stopped:
        return False
    block.stopped_at = now if stopped else None
    _bump(creditor)
    db.session.flush()
    return True


def set_image(creditor: Creditor, block: Block, content: bytes) -> None:
    """The block's image from an upload: a PNG or JPEG read whole by Pillow (`core.images.raster_kind`),
    then drawn again at most IMAGE_MAX_WIDTH x IMAGE_MAX_HEIGHT, without its metadata; InvalidData for
    anything else."""
    if not content or len(content) > IMAGE_MAX_BYTES or raster_kind(content) is None:
        raise InvalidData({"image": "image"})
    from PIL import Image  # only when an image is uploaded

    with Image.open(io.BytesIO(content)) as image:
        image.thumbnail((IMAGE_MAX_WIDTH, IMAGE_MAX_HEIGHT))
        has_alpha = image.mode in ("RGBA", "LA", "P")
        out = io.BytesIO()
        if has_alpha:
            image.convert("RGBA").save(out, format="PNG", optimize=True)
            mime = "image/png"
        else:
            image.convert("RGB").save(out, format="JPEG", quality=82, optimize=True)
            mime = "image/jpeg"
    data = out.getvalue()
    block.image, block.image_mime = data, mime
    block.image_version = hashlib.sha256(data).hexdigest()[:12]
    _bump(creditor)
    db.session.flush()


def remove_image(creditor: Creditor, block: Block) -> bool:
    if block.image_version is None:
        return False
    block.image = block.image_mime = block.image_version = None
    _bump(creditor)
    db.session.flush()
    return True


def set_max_blocks(creditor: Creditor, most: int) -> None:
    if not isinstance(most, int) or not 0 <= most <= MAX_BLOCKS_PER_PAGE:
        raise InvalidData({"content_max_blocks": "max_blocks"})
    if creditor.content_max_blocks != most:
        creditor.content_max_blocks = most
        _bump(creditor)
    db.session.flush()


# --- reading ---------------------------------------------------------------------------------------


def blocks_of(creditor_id: int, *, livemode: bool | None = None) -> list[Block]:
    query = select(Block).options(selectinload(Block.variants)).where(Block.creditor_id == creditor_id)
    if livemode is not None:
        query = query.where(Block.livemode == livemode)
    return list(db.session.scalars(query.order_by(Block.stopped_at.is_not(None), Block.priority.desc(), Block.id)))


def find_block(creditor_id: int, public_id: str, *, livemode: bool | None = None) -> Block | None:
    """One of the creditor's blocks by its public id (another creditor's: None)."""
    query = select(Block).where(Block.creditor_id == creditor_id, Block.public_id == public_id)
    if livemode is not None:
        query = query.where(Block.livemode == livemode)
    return db.session.scalar(query)


def leads_of(creditor_id: int, *, livemode: bool = True, limit: int = 200) -> list[tuple[Lead, Invoice, Customer]]:
    """The creditor's latest leads with their bill and customer, newest first."""
    return [tuple(row) for row in db.session.execute(  # type: ignore[misc]
        select(Lead, Invoice, Customer).join(Invoice, Lead.invoice_id == Invoice.id)
        .join(Customer, Lead.customer_id == Customer.id)
        .where(Lead.creditor_id == creditor_id, Lead.livemode == livemode)
        .order_by(Lead.created_at.desc(), Lead.id.desc()).limit(limit))]



def count_leads(block_id: int) -> int:
    return db.session.scalar(select(func.count(Lead.id)).where(Lead.block_id == block_id)) or 0


# --- what a page gets --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    shown: Shown
    ref: str  # the signed reference: the click, the impression, the lead


@dataclass(frozen=True)
class PageContent:
    blocks: list[Item]
    no_offers: bool  # the customer asked for no offers
    offers_form: bool  # the page offers "no offers, please" (an offer shows) or "offers again"


def page_content(invoice: Invoice, audience: Audience, today: date, secret: str) -> PageContent:
    """The blocks of a customer page with their references, and the "no offers" form's state."""
    shown = blocks_for(invoice, audience, today)
    items = [Item(s, make_ref(secret, s, invoice.id, audience.placement)) for s in shown]
    offers = any(s.block.kind == Kind.OFFER for s in shown)
    return PageContent(items, audience.no_offers, offers or audience.no_offers)
