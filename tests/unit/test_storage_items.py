"""shared.items.Item converts items by a plan made once per class, for speed (README, Bench, figure 8): every model
gives, for any values, the item PynamoDB's own container code gives, and reads back the values PynamoDB reads; an
item read keeps its form as read (`as_read`) for the update that follows; the wire-level update (`changes`) writes a
page's path as one map key whatever it holds; the low-level query and GetItem read what PynamoDB read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pynamodb.attributes import (
    AttributeContainer,
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import AttributeDeserializationError, AttributeNullError

from shared import items, storage
from shared.items import Item, Written, changes, typed_map
from shared.settings import Settings
from shared.storage import (
    Consent,
    ContactModel,
    EventModel,
    Preferences,
    SuppressionLift,
    Tables,
    get_or_none,
    query,
    tables,
)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
MODELS = sorted(Item.__subclasses__(), key=lambda model: model.__name__)

text = st.text(min_size=1, max_size=12)
instants = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
# PynamoDB takes a naive one as UTC, converts any other; a year before 1000 is padded
offsets = st.builds(timezone, st.timedeltas(min_value=-timedelta(hours=23), max_value=timedelta(hours=23)))
any_instants = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.one_of(st.none(), st.just(UTC), offsets)
).map(lambda at: at.replace(microsecond=at.microsecond))
numbers = st.one_of(st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False, width=32))
# What a raw map (custom attributes, source ids, pages) may hold, nested
raw_values = st.recursive(
    st.one_of(st.none(), st.booleans(), text, st.integers(-(10**9), 10**9)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=6,
)


def _fields(cls: type[MapAttribute[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {name: _value(attribute) for name, attribute in cls.get_attributes().items() if not attribute.null},
        optional={name: _value(attribute) for name, attribute in cls.get_attributes().items() if attribute.null},
    )


def _typed_map(cls: type[MapAttribute[str, Any]]) -> st.SearchStrategy[Any]:
    return _fields(cls).map(lambda values: cls(**values))


def _value(attribute: Any) -> st.SearchStrategy[Any]:
    """Values a model's attribute may hold, by its kind."""
    if isinstance(attribute, MapAttribute):
        return st.dictionaries(text, raw_values, max_size=4) if attribute.is_raw() else _typed_map(type(attribute))
    if isinstance(attribute, ListAttribute):
        of = attribute.element_type
        if of is not None and issubclass(of, MapAttribute):
            return st.lists(_typed_map(of), max_size=3)
        return st.lists(text, max_size=3)
    kinds: dict[type[Any], st.SearchStrategy[Any]] = {
        UnicodeSetAttribute: st.sets(text, min_size=1, max_size=4),
        UTCDateTimeAttribute: any_instants,
        TTLAttribute: instants,
        NumberAttribute: numbers,
        BooleanAttribute: st.booleans(),
        JSONAttribute: st.dictionaries(text, raw_values, max_size=3),
        UnicodeAttribute: text,
    }
    return next(strategy for kind, strategy in kinds.items() if isinstance(attribute, kind))


@st.composite
def models_and_values(draw: st.DrawFn) -> tuple[type[Item], dict[str, Any]]:
    """A model and the values of an item, its required attributes set, any of the others set or not."""
    model = draw(st.sampled_from(MODELS))
    values = {}
    for name, attribute in model.get_attributes().items():
        if not attribute.null or draw(st.booleans()):
            values[name] = draw(_value(attribute))
    return model, values


def plain(value: Any) -> Any:
    """A value as data, maps by their class and values (a map's == builds a condition, it does not compare)."""
    if isinstance(value, MapAttribute):
        return (type(value).__name__, {name: plain(one) for name, one in value.attribute_values.items()})
    if isinstance(value, list):
        return [plain(one) for one in value]
    if isinstance(value, dict):
        return {name: plain(one) for name, one in value.items()}
    return value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models_and_values())
def test_any_item_of_any_model_is_written_and_read_as_pynamodb_writes_and_reads_it(
    made: tuple[type[Item], dict[str, Any]],
) -> None:
    model, values = made
    item = model(**values)
    # PynamoDB's own container code: the values set, then the item written, from the same values
    by_pynamodb = model.__new__(model)
    by_pynamodb.attribute_values = {}
    AttributeContainer._set_defaults(by_pynamodb, _user_instantiated=True)
    AttributeContainer._set_attributes(by_pynamodb, **values)
    assert plain(item.attribute_values) == plain(by_pynamodb.attribute_values)
    expected = AttributeContainer._container_serialize(by_pynamodb, null_check=True)
    assert item.serialize() == expected
    read = type(item).from_raw_data(expected)
    reference = type(item).__new__(type(item))
    AttributeContainer._container_deserialize(reference, expected)
    assert plain(read.attribute_values) == plain(reference.attribute_values)
    assert {name: type(value) for name, value in read.attribute_values.items()} == {
        name: type(value) for name, value in reference.attribute_values.items()
    }
    assert unordered(read.serialize()) == unordered(expected)  # a set read back may list its names in another order


def unordered(wire: Any) -> Any:
    if isinstance(wire, dict):
        return {key: sorted(value) if key == "SS" else unordered(value) for key, value in wire.items()}
    if isinstance(wire, list):
        return [unordered(one) for one in wire]
    return wire


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([Consent, Preferences, SuppressionLift]).flatmap(lambda cls: st.tuples(st.just(cls), _fields(cls)))
)
def test_a_typed_map_made_quickly_is_the_one_pynamodb_makes(made: tuple[type[Any], dict[str, Any]]) -> None:
    cls, values = made
    assert plain(typed_map(cls, **values)) == plain(cls(**values))
    serialize = AttributeContainer._container_serialize
    assert serialize(typed_map(cls, **values)) == serialize(cls(**values))


def test_a_typed_map_refuses_what_it_does_not_declare() -> None:
    with pytest.raises(ValueError, match="does not exist"):
        typed_map(Consent, state="granted", colour="blue")


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-24T09:00:00.000000+0000",
        "999-11-24T09:00:00.000000+0000",  # an unpadded year, as strftime wrote some
        "2026-11-24 09:00:00.000000+0000",
        "2026-11-24T09:00:00.000000+0100",
        "2026-11-24T09:00:00+00:00",
        "2026-13-24T09:00:00.000000+0000",
        "2026-11-24T09:00: 0.000000+0000",
        "",
    ],
)
def test_a_stored_time_is_read_or_refused_as_pynamodb_reads_or_refuses_it(text: str) -> None:
    def outcome(read: Any) -> Any:
        try:
            return read(text)
        except ValueError as error:
            return str(error)

    assert outcome(items._utc_datetime) == outcome(UTCDateTimeAttribute().deserialize)


def test_times_written_and_read_again_are_each_their_own_even_when_equal() -> None:
    # Given times that compare equal or share their wall clock, written and read in turns (the conversions are kept)
    paris = ZoneInfo("Europe/Paris")
    ambiguous = datetime(2026, 10, 25, 2, 30, tzinfo=paris)  # twice that night: 00:30 then 01:30 UTC
    utc = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    times = [
        utc,
        ambiguous,
        ambiguous.replace(fold=1),
        utc.replace(tzinfo=None),
        utc.astimezone(timezone(timedelta(hours=2))),
    ]
    attribute = UTCDateTimeAttribute()
    for time in times + times[::-1] + times:
        # Then each is written as PynamoDB writes it, and read back as PynamoDB reads that text
        text = items._utc_text(time)
        assert text == attribute.serialize(time)
        assert items._utc_datetime(text) == attribute.deserialize(text)
        assert items._utc_datetime(text).tzinfo is UTC


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_a_new_item_has_the_defaults_pynamodb_gives_it(model: type[Item]) -> None:
    made = model()
    reference = model.__new__(model)
    reference.attribute_values = {}
    AttributeContainer._set_defaults(reference, _user_instantiated=True)
    assert plain(made.attribute_values) == plain(reference.attribute_values)


def test_a_missing_required_attribute_is_refused_as_pynamodb_refuses_it() -> None:
    def refusal(contact: ContactModel) -> str:
        with pytest.raises(AttributeNullError) as pynamodb:
            AttributeContainer._container_serialize(contact, null_check=True)
        with pytest.raises(AttributeNullError) as ours:
            contact.serialize()
        assert str(ours.value) == str(pynamodb.value)
        return str(ours.value)

    contact = ContactModel(contact_id="c1", created_at=NOW)
    assert "updated_at" in refusal(contact)
    contact.updated_at = NOW
    contact.email_consent = Consent(state="granted", source="shopify")  # no `at`
    assert "email_consent.at" in refusal(contact)
    contact.email_consent = None
    contact.consent_history = [Consent(state="granted", source="shopify", at=NOW), Consent(state="denied")]
    assert "consent_history" in refusal(contact)
    with pytest.raises(ValueError, match="does not exist"):
        ContactModel(contact_id="c1", no_such_attribute=1)


@pytest.fixture
def t(aws: dict[str, str]) -> Tables:
    return tables(Settings.from_environ(aws))


def _rich(t: Tables) -> ContactModel:
    contact = t.contacts(contact_id="c1", email="camille@example.com", created_at=NOW, updated_at=NOW, score=12.5)
    contact.email_consent = Consent(state="granted", level="single_opt_in", source="shopify", at=NOW)
    contact.consent_history = [contact.email_consent, Consent(state="denied", source="preferences", at=NOW)]
    contact.attributes = {"birthday": "1990-03-15", "tier": 2, "tags": ["a", "b"], "nested": {"x": None, "y": True}}
    contact.lists = {"vip", "newsletter", "clients"}
    contact.recent_sends = ["welcome#1", "cart#2"]
    contact.pages = {"/products/shoes": 3}
    return contact


def test_a_contact_read_keeps_its_item_as_read_equal_to_what_it_writes_again(t: Tables) -> None:
    # Given a contact with maps, sets, lists of typed maps and numbers, stored
    _rich(t).save()
    # When it is read
    read = get_or_none(t.contacts, "c1", consistent=True)
    assert read is not None
    # Then its item as read is what it would write again: no update out of nothing
    assert unordered(read.as_read()) == unordered(read.serialize())
    assert changes(read, read.as_read()) == []
    # and a contact made in hand has none but its own
    assert _rich(t).as_read() == _rich(t).serialize()


def test_a_pages_path_with_brackets_and_dots_is_one_map_key(t: Tables) -> None:
    # Given a stored contact, and paths a visitor's browser may send (PynamoDB reads `[0]` as a list index)
    _rich(t).save()
    read = get_or_none(t.contacts, "c1", consistent=True)
    assert read is not None
    before = read.as_read()
    paths = ["/search[0]", "/a.b/c", "/q?x[]=1&y=#z"]
    read.pages = {**read.pages.as_dict(), **dict.fromkeys(paths, 1)}
    read.lists = {"vip", "clients", "winback"}  # one list joined, one left
    # When only what changed is written
    actions = changes(read, before)
    assert all(isinstance(action, Written) for action in actions)
    read.update(actions=actions)
    # Then every path is its own key, the rest kept, the lists as they are now
    again = get_or_none(t.contacts, "c1", consistent=True)
    assert again is not None
    assert again.pages.as_dict() == {"/products/shoes": 3, **dict.fromkeys(paths, 1)}
    assert again.lists == {"vip", "clients", "winback"}
    assert plain(again.attributes) == plain(_rich(t).attributes)


def test_a_query_reads_every_item_of_the_partition_under_its_conditions(t: Tables) -> None:
    # Given a contact's events over several days, of two types, and another contact's
    for day in range(6):
        at = NOW - timedelta(days=day)
        kind = "order.placed" if day % 2 else "page.viewed"
        t.events(contact_id="c1", at_id=f"{at.isoformat()}#e{day}", type=kind, source="s", properties={"n": day}).save()
    t.events(contact_id="c2", at_id=f"{NOW.isoformat()}#other", type="order.placed", source="s").save()
    # When the last three days' orders are queried
    since = (NOW - timedelta(days=3)).isoformat()
    found = query(t.events, "c1", EventModel.at_id >= since, filter_condition=EventModel.type.is_in("order.placed"))
    # Then they are what PynamoDB's query finds
    expected = list(t.events.query("c1", EventModel.at_id >= since, filter_condition=EventModel.type == "order.placed"))
    assert [event.at_id for event in found] == [event.at_id for event in expected]
    assert len(found) == 2
    assert [event.properties for event in found] == [{"n": 3}, {"n": 1}]
    assert len(query(t.events, "c1")) == 6
    assert query(t.events, "nobody") == []


def test_a_missing_item_is_none_and_a_table_that_is_not_there_a_storage_error(t: Tables) -> None:
    assert get_or_none(t.contacts, "nobody") is None
    missing = storage._bind(ContactModel, "no-such-table", "eu-west-3")
    with pytest.raises(storage.StorageError):
        get_or_none(missing, "c1")
    with pytest.raises(storage.StorageError):
        query(missing, "c1")


def test_what_changed_since_the_read_is_what_a_full_comparison_finds(t: Tables) -> None:
    # Given a stored contact, and one stored by hand without its defaulted counters
    _rich(t).save()
    bare = {"contact_id": {"S": "c2"}, "created_at": {"S": "2026-11-24T09:00:00.000000+0000"}}
    storage.client_of(t.contacts).put_item(TableName=t.contacts.Meta.table_name, Item=bare)

    def written(contact: ContactModel) -> list[str]:
        return [repr(action) for action in changes(contact, contact.as_read())]

    def compared(contact: ContactModel) -> list[str]:  # `before` a copy: every attribute serialised and compared
        return [repr(action) for action in changes(contact, dict(contact.as_read()))]

    read = get_or_none(t.contacts, "c1", consistent=True)
    assert read is not None
    assert written(read) == compared(read) == []
    # When a string is set anew, a time to the same instant, a set changed in place, a raw map's key added
    read.first_name = "Camille"
    read.updated_at = NOW.astimezone(timezone(timedelta(hours=1)))
    read.lists.add("winback")
    read.attributes = {**read.attributes.as_dict(), "tier": 3}
    # Then the shortcut finds what the full comparison finds
    assert written(read) == compared(read)
    assert [action.split("(")[0] for action in written(read)] == ["WrittenSet", "WrittenSet", "WrittenAdd"]
    # and a contact stored without its counters gets them written, as before
    other = get_or_none(t.contacts, "c2", consistent=True)
    assert other is not None
    other.updated_at = NOW
    assert written(other) == compared(other)
    assert any("orders_count" in action for action in written(other))


@pytest.mark.parametrize("text", ["0", "7", "1234567890123", "007", "-3", "1e3", "1.50", "²", "٣"])
def test_a_stored_number_is_read_or_refused_as_pynamodb_reads_or_refuses_it(text: str) -> None:
    def outcome(read: Any) -> Any:
        try:
            value = read(text)
        except ValueError as error:
            return type(error)
        return (type(value), value)

    assert outcome(items._number) == outcome(NumberAttribute().deserialize)


@pytest.mark.parametrize("text", ["0", "1764000000", "1764000000.5", "0017", "-3", "1e9", "x"])
def test_a_stored_expiry_is_read_or_refused_as_pynamodb_reads_or_refuses_it(text: str) -> None:
    # Given an event's record whose TTL attribute holds this text
    wire = {"contact_id": {"S": "c1"}, "at_id": {"S": "a"}, "type": {"S": "t"}, "source": {"S": "s"}}
    wire["expires_at"] = {"N": text}

    def outcome(read: Any) -> Any:
        try:
            return read().attribute_values.get("expires_at")
        except (ValueError, AttributeDeserializationError) as error:
            return type(error)

    def by_pynamodb() -> Any:
        reference = EventModel.__new__(EventModel)
        AttributeContainer._container_deserialize(reference, wire)
        return reference

    # Then it is the time PynamoDB reads, or the error it raises
    assert outcome(lambda: EventModel.from_raw_data(wire)) == outcome(by_pynamodb)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.one_of(text, st.sampled_from(["null", "default", "attr_name", "hash_key", "default_for_new"])),
        raw_values,
        max_size=5,
    )
)
def test_a_raw_map_set_from_a_dict_is_the_map_pynamodb_makes_of_it(value: dict[str, Any]) -> None:
    # Given a bound model, whose raw maps' descriptors are parcours' (items.direct_access)
    contact = storage._bind(ContactModel, "contacts", "eu-west-3")(contact_id="c1", created_at=NOW, updated_at=NOW)
    # When a dict is set on one, as the scoring or a scenario's set_attribute do
    contact.attributes = value
    # Then it holds the map MapAttribute's own setter makes of it, keys named like Attribute's arguments included
    made: MapAttribute[str, Any] = MapAttribute(**value)
    assert type(contact.attributes) is MapAttribute
    assert plain(contact.attributes) == plain(made)
    assert contact.attributes.__dict__.get("attribute_kwargs") == made.__dict__.get("attribute_kwargs")
    assert AttributeContainer._container_serialize(contact)["attributes"] == {"M": made.serialize(made)}
    # and the attribute is still a raw map to PynamoDB's expressions
    assert type(ContactModel.attributes).is_raw()
    assert ContactModel.attributes["tier"].set(2).serialize({}, {}) == "#0.#1 = :0"
