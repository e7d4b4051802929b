"""PynamoDB items converted by a plan made once per model class: what the process function spends most of its own
CPU on, at a fraction of PynamoDB's own cost, with the same items and the same values in hand (README, Bench,
figure 8). Also the wire-level update of what changed in an item (`changes`), and its key (`key_of`).

PynamoDB's container code goes through each attribute's descriptors, a property and two isinstance checks per
attribute and per item, formats a time with strftime, and deep-copies an attribute for each list of typed maps it
reads (a contact's consent history). A raw map's nested values, lists of plain values and JSON are still
PynamoDB's to convert, and an error is PynamoDB's own, raised by its code. tests/unit/test_storage_items.py holds
the two to the same answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import suppress
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

from pynamodb.attributes import (
    DESERIALIZE_CLASS_MAP,
    Attribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.constants import BOOLEAN, MAP, NULL, NUMBER, STRING, STRING_SET
from pynamodb.exceptions import AttributeDeserializationError, AttributeNullError
from pynamodb.expressions.update import Action, AddAction, DeleteAction, RemoveAction, SetAction
from pynamodb.models import Model


class Item(Model):
    """PynamoDB's model, its items read and written by its class's plan (`_plan`)."""

    def __init__(
        self, hash_key: Any = None, range_key: Any = None, _user_instantiated: bool = True, **attributes: Any
    ) -> None:
        """As PynamoDB's (no discriminator: `_plan` refuses one), through the plan."""
        for kind, name, value in (("hash", self._hash_keyname, hash_key), ("range", self._range_keyname, range_key)):
            if value is not None:
                if name is None:
                    raise ValueError(f"This model has no {kind} key, but a {kind} key value was provided: {value}")
                attributes[name] = value
        self.attribute_values = {}
        self._set_defaults(_user_instantiated=_user_instantiated)
        self._set_attributes(**attributes)

    def _container_serialize(self, null_check: bool = True) -> dict[str, dict[str, Any]]:
        return _wire(self, null_check)

    def _container_deserialize(self, attribute_values: dict[str, dict[str, Any]]) -> None:
        _read(self, attribute_values)
        self.__dict__["_as_read"] = attribute_values
        self.__dict__["_values_read"] = dict(self.attribute_values)  # what `changes` need not write again

    def _set_defaults(self, _user_instantiated: bool = True) -> None:
        values = self.attribute_values
        for p in _plan(self.__class__):
            default = p.default_for_new if _user_instantiated and p.default_for_new is not None else p.default
            value = default() if callable(default) else default
            if value is not None:
                _put(self, values, p, value)

    def _set_attributes(self, **attributes: Any) -> None:
        planned = _by_name(self.__class__)
        values = self.attribute_values
        for name, value in attributes.items():
            p = planned.get(name)
            if p is None:
                raise ValueError(f"Attribute {name} specified does not exist")
            _put(self, values, p, value)

    def as_read(self) -> dict[str, dict[str, Any]]:
        """The item as DynamoDB last answered it, whatever changed in hand since (an item made in hand: as it is
        now): `before` for `changes`, without serialising the item again."""
        read: dict[str, dict[str, Any]] | None = self.__dict__.get("_as_read")
        return read if read is not None else self.serialize()

    @classmethod
    def _instantiate(cls: type[ItemT], attribute_values: dict[str, dict[str, Any]]) -> ItemT:
        item = cls.__new__(cls)
        item._container_deserialize(attribute_values)
        return item


ItemT = TypeVar("ItemT", bound=Item)
SCALAR, TYPED_MAP, TYPED_LIST, OTHER = range(4)  # how a plan converts an attribute


class _Planned:
    """How one attribute converts (a plain class: a dataclass of these fields cost 3 ms at import, the cold start of
    every function).

    name: in Python; stored_as: in the item; kind: DynamoDB's type (S, N, M, L, SS ...); how: SCALAR ... OTHER;
    element: a typed map's class (TYPED_MAP) or its elements' (TYPED_LIST); default: when absent from a read item;
    verbatim: serialised as it is (a string); immutable: a string, number, boolean or time (changed only by setting
    it anew); ttl, utc, number: a TTL's, a UTCDateTimeAttribute's, a NumberAttribute's (converted without them);
    direct: kept as given (no __set__ of its own: a map's converts a dict, a TTL's a delta)."""

    __slots__ = (
        "attribute",
        "default",
        "default_for_new",
        "direct",
        "element",
        "how",
        "immutable",
        "kind",
        "name",
        "nullable",
        "number",
        "raw",
        "stored_as",
        "ttl",
        "utc",
        "verbatim",
    )

    def __init__(self, attribute: Any, name: str, how: int, element: Any) -> None:
        kind = type(attribute)
        self.name, self.stored_as, self.kind, self.attribute = name, attribute.attr_name, attribute.attr_type, attribute
        self.how, self.element = how, element
        self.default, self.default_for_new, self.nullable = (
            attribute.default,
            attribute.default_for_new,
            bool(attribute.null),
        )
        self.verbatim = how == SCALAR and self.kind == STRING and kind.serialize is Attribute.serialize
        self.immutable = (
            how == SCALAR and self.kind in (STRING, NUMBER, BOOLEAN) and not isinstance(attribute, JSONAttribute)
        )
        self.ttl = isinstance(attribute, TTLAttribute)
        self.raw = how == OTHER and self.kind == MAP
        self.number = kind.deserialize is NumberAttribute.deserialize
        self.utc = isinstance(attribute, UTCDateTimeAttribute) and (kind.serialize, kind.deserialize) == (
            UTCDateTimeAttribute.serialize,
            UTCDateTimeAttribute.deserialize,
        )
        self.direct = getattr(kind, "direct", False) or kind.__set__ is Attribute.__set__


@lru_cache(maxsize=128)
def _plan(container: Any) -> tuple[_Planned, ...]:  # a model or a typed map
    """How each attribute of a model or typed map converts, in PynamoDB's order."""
    if getattr(container, "_discriminator", None):
        raise TypeError(f"{container.__name__}: a discriminator is PynamoDB's own to read")
    planned = []
    for name, attr in container.get_attributes().items():
        how, element = OTHER, None
        if isinstance(attr, MapAttribute):
            how, element = (OTHER, None) if attr.is_raw() else (TYPED_MAP, type(attr))
        elif isinstance(attr, ListAttribute):
            of = attr.element_type
            if isinstance(of, type) and issubclass(of, MapAttribute) and of is not MapAttribute:
                how, element = TYPED_LIST, of
        else:
            how = SCALAR
        planned.append(_Planned(attr, name, how, element))
    return tuple(planned)


@lru_cache(maxsize=128)
def _by_name(container: Any) -> dict[str, _Planned]:
    return {p.name: p for p in _plan(container)}


@lru_cache(maxsize=128)
def _by_stored(container: Any) -> dict[str, _Planned]:
    return {p.stored_as: p for p in _plan(container)}


@lru_cache(maxsize=128)
def _defaults(container: Any) -> tuple[_Planned, ...]:
    """The attributes an item read without them has a value of (their default)."""
    return tuple(p for p in _plan(container) if p.default is not None)


@lru_cache(maxsize=128)
def _required(container: Any) -> tuple[_Planned, ...]:
    return tuple(p for p in _plan(container) if not p.nullable)


def _wire(container: Any, null_check: bool) -> dict[str, dict[str, Any]]:
    """A model's or typed map's item, as AttributeContainer._container_serialize makes it: from the values set (a
    contact has a third of its attributes), then the required ones checked; an error is raised in PynamoDB's order."""
    try:
        wire: dict[str, dict[str, Any]] = {}
        planned = _by_name(container.__class__)
        for name, value in container.attribute_values.items():
            p = planned.get(name)
            if value is not None and p is not None:
                value = _value_wire(p, value, null_check)
                if value is not None:
                    wire[p.stored_as] = {p.kind: value}
        if null_check and any(p.stored_as not in wire for p in _required(container.__class__)):
            raise AttributeNullError("")
    except Exception:  # raised again, in PynamoDB's order, by the slower way
        return _wire_in_order(container, null_check)
    return wire


def _value_wire(p: _Planned, value: Any, null_check: bool) -> Any:
    """An attribute's value (not None) in DynamoDB's form, None for an empty one (a set)."""
    if p.verbatim:
        return value  # a string: as it is
    if p.how != SCALAR:
        return _container(p, value, null_check)
    if p.kind == NUMBER and type(value) is int:
        return str(value)
    if p.ttl and type(value) is datetime and value.tzinfo is UTC and not value.microsecond:
        return str(int(value.timestamp()))  # as TTLAttribute writes a normalised one
    if p.utc and isinstance(value, datetime):
        return _utc_text(value)
    return p.attribute.serialize(value)


def _wire_in_order(container: Any, null_check: bool) -> dict[str, dict[str, Any]]:
    """As AttributeContainer._container_serialize makes it, attribute by attribute in its order (its error first)."""
    wire: dict[str, dict[str, Any]] = {}
    values = container.attribute_values
    for p in _plan(container.__class__):
        value = values.get(p.name)
        if value is not None:
            value = _value_wire(p, value, null_check)
        if value is not None:
            wire[p.stored_as] = {p.kind: value}
        elif null_check and not p.nullable:
            raise AttributeNullError(p.name)
    return wire


def _container(p: _Planned, value: Any, null_check: bool) -> Any:
    """A map's or a list's value: typed maps through their plan, the rest (and an error) by PynamoDB's code."""
    try:
        if p.how == TYPED_MAP and type(value) is p.element:
            return _wire(value, null_check)
        if p.how == TYPED_LIST and all(type(one) is p.element for one in value):
            return [{MAP: _wire(one, null_check)} for one in value]
    except AttributeNullError:
        pass  # raised again below, with PynamoDB's path to it
    try:
        if isinstance(value, MapAttribute) and not value.validate(null_check=null_check):
            raise ValueError(f"Attribute '{p.name}' is not correctly typed")
        return p.attribute.serialize(value, null_check=null_check)
    except AttributeNullError as error:
        error.prepend_path(p.name)
        raise


def _read(container: Any, attribute_values: dict[str, dict[str, Any]]) -> None:
    """A model's or typed map's values from its item, as AttributeContainer._container_deserialize sets them: what
    the item holds, then the defaults of what it does not."""
    values: dict[str, Any] = {}
    container.attribute_values = values
    planned = _by_stored(container.__class__)
    for stored_as, stored in attribute_values.items():
        p = planned.get(stored_as)
        if p is None or not stored or NULL in stored:
            continue
        if p.kind not in stored:
            raise AttributeDeserializationError(p.stored_as, p.kind)
        wire = stored[p.kind]
        if p.how == TYPED_MAP:
            values[p.name] = _typed_map(p.element, wire)
        elif p.how == TYPED_LIST and all(MAP in one or NULL in one for one in wire):
            values[p.name] = [None if NULL in one else _typed_map(p.element, one[MAP]) for one in wire]
        elif p.how == OTHER and p.kind == MAP:  # a raw map: its dict as MapAttribute(**value) holds it
            values[p.name] = _raw_map(MapAttribute, _raw_values(wire))
        else:
            if p.utc:
                value = _utc_datetime(wire)
            elif p.number:
                value = _number(wire)
            elif p.ttl:  # as TTLAttribute reads it (json.loads), a whole number without json
                value = datetime.fromtimestamp(_number(wire), tz=UTC)
            else:
                value = p.attribute.deserialize(wire)
            _put(container, values, p, value)
    for defaulted in _defaults(container.__class__):
        if defaulted.name not in values:
            default = defaulted.default
            _put(container, values, defaulted, default() if callable(default) else default)


def _number(text: str) -> Any:
    """As NumberAttribute reads it (json.loads), a whole number without json."""
    if text.isascii() and text.isdigit() and (text[0] != "0" or len(text) == 1):
        return int(text)
    return json.loads(text)


def _raw_values(wire: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A raw map's values as MapAttribute.deserialize reads them: a string or a number without its attribute
    classes, anything else by them."""
    values: dict[str, Any] = {}
    for key, typed in wire.items():
        if len(typed) == 1 and STRING in typed:
            values[key] = typed[STRING]
        elif len(typed) == 1 and NUMBER in typed:
            values[key] = _number(typed[NUMBER])
        else:
            for kind, value in typed.items():
                values[key] = DESERIALIZE_CLASS_MAP[kind].deserialize(value)
    return values


def _utc_text(value: datetime) -> str:
    """As UTCDateTimeAttribute writes it (strftime with %f and %z, padded to 31), at a sixth of the cost; a time
    written again (a contact's times are mostly the same few) from `_TIMES`."""
    plain = type(value) is datetime
    text = _TIMES.get(value) if plain else None
    if text is None:
        utc = value
        if utc.tzinfo is not UTC:
            utc = utc.replace(tzinfo=UTC) if utc.tzinfo is None else utc.astimezone(UTC)
        text = utc.isoformat(timespec="microseconds")[:-6] + "+0000"
        if plain and (value.tzinfo is UTC or value.tzinfo is None):  # (a zone's fold would make equal times differ)
            _remember(_TIMES, value, text)
    return text


def _utc_datetime(text: str) -> datetime:
    """As UTCDateTimeAttribute reads it, at a tenth of the cost (a text read again from `_TIMES_READ`); anything
    but its own form is PynamoDB's to read (or to refuse)."""
    read = _TIMES_READ.get(text)
    if read is not None:
        return read
    separators = text[4] + text[7] + text[10] + text[13] + text[16] + text[19] if len(text) == 31 else ""
    if separators == "--T::." and text[26:] == "+0000":
        with suppress(ValueError):
            read = datetime.fromisoformat(text)
            _remember(_TIMES_READ, text, read)
            return read
    return UTCDateTimeAttribute._fast_parse_utc_date_string(text)


# The last times converted each way (immutable both ways): an event's items hold the same few times, `now` above all
_TIMES: dict[datetime, str] = {}
_TIMES_READ: dict[str, datetime] = {}
_REMEMBERED = 256


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _REMEMBERED:
        cache.clear()
    cache[key] = value


def _put(container: Any, values: dict[str, Any], p: _Planned, value: Any) -> None:
    """A value set as its attribute's descriptor sets it: a TTL's normalised (an aware datetime, whole seconds), a
    map's made a map (its own __set__), any other as it is."""
    if p.ttl:  # an aware UTC time in whole seconds (what a TTL reads as) is normalised already
        whole = type(value) is datetime and value.tzinfo is UTC and not value.microsecond
        values[p.name] = value if whole else p.attribute._normalize(value)
    elif p.raw and isinstance(value, Mapping):
        values[p.name] = _raw_map(MapAttribute, value)
    elif p.direct:
        values[p.name] = value
    else:
        setattr(container, p.name, value)


def _typed_map(cls: type[MapAttribute[str, Any]], wire: dict[str, dict[str, Any]]) -> MapAttribute[str, Any]:
    """As cls(_user_instantiated=False) then its _container_deserialize make it."""
    made = cls.__new__(cls)
    made.__dict__["attribute_kwargs"] = {}
    _read(made, wire)
    return made


def typed_map(cls: type[MapT], **values: Any) -> MapT:
    """As cls(**values) makes a typed map (a consent's proof), at a third of the cost: its defaults, then the values
    given, each a declared attribute (ValueError otherwise, as PynamoDB says)."""
    made = cls.__new__(cls)
    made.__dict__["attribute_kwargs"] = {arg: values[arg] for arg in MapAttribute.attribute_args if arg in values}
    planned = _by_name(cls)
    unknown = [name for name in values if name not in planned]
    if unknown:
        raise ValueError(f"Attribute {unknown[0]} specified does not exist")
    attribute_values: dict[str, Any] = {}
    made.__dict__["attribute_values"] = attribute_values
    for p in _plan(cls):
        default = p.default_for_new if p.default_for_new is not None else p.default
        value = values[p.name] if p.name in values else (default() if callable(default) else default)
        if value is not None or p.name in values:
            _put(made, attribute_values, p, value)
    return made


MapT = TypeVar("MapT", bound=MapAttribute[str, Any])


def _raw_map(cls: type[MapAttribute[str, Any]], value: Mapping[str, Any]) -> MapAttribute[str, Any]:
    """As cls(**value) makes it: a raw map's keys in attribute_values, those named like Attribute's arguments in
    attribute_kwargs too."""
    made = cls.__new__(cls)
    made.__dict__["attribute_kwargs"] = {arg: value[arg] for arg in MapAttribute.attribute_args if arg in value}
    made.__dict__["attribute_values"] = dict(value)
    return made


def direct_access(model: type[Model]) -> None:
    """A model's plain attributes (no getter nor setter of their own, as a map's or a TTL's) read and set its values
    directly: PynamoDB's descriptors first ask whether the instance is a map's class object, then look the name up
    twice, once through a property, for each `contact.score`. Done when the model is bound to its table (and again,
    doing nothing, for a second table)."""
    for name, attribute in model.get_attributes().items():
        kind: Any = type(attribute)
        if name != attribute.attr_name:
            continue
        if kind.__get__ is Attribute.__get__ and kind.__set__ is Attribute.__set__:
            attribute.__class__ = _direct_class(kind)
        elif kind is MapAttribute:  # a raw map: a dict set made its map as PynamoDB makes it, at a third of the cost
            attribute.__class__ = _raw_map_class()


def _set_raw_map(self: Any, instance: Any, value: Any) -> None:
    if isinstance(value, Mapping):  # as MapAttribute.__set__ converts it
        value = _raw_map(MapAttribute, value)
    instance.attribute_values[self.attr_path[-1]] = value


@lru_cache(maxsize=1)
def _raw_map_class() -> Any:
    """A model's raw map attribute's class: a raw MapAttribute still (is_raw), its descriptors direct."""
    methods = {
        "__get__": _get_direct,
        "__set__": _set_raw_map,
        "is_raw": classmethod(lambda cls: True),
        "__module__": MapAttribute.__module__,
    }
    return type("MapAttribute", (MapAttribute,), methods)


def _get_direct(self: Any, instance: Any, owner: Any) -> Any:
    if instance is None:
        return self
    return instance.attribute_values.get(self.attr_path[-1])


def _set_direct(self: Any, instance: Any, value: Any) -> None:
    instance.attribute_values[self.attr_path[-1]] = value


@lru_cache(maxsize=32)
def _direct_class(kind: Any) -> Any:
    """The attribute's class with descriptors reading and setting the model's attribute_values directly."""
    methods = {"__get__": _get_direct, "__set__": _set_direct, "direct": True, "__module__": kind.__module__}
    return type(kind.__name__, (kind,), methods)


def changes(item: Model, before: dict[str, Any]) -> list[Action]:
    """The update writing what differs in `item` from `before` (the item as read: `as_read()`): a raw map (custom
    attributes, source ids, pages) key by key, so that a key another writer set meanwhile (the scoring's
    lifecycle_stage, a scenario's set_attribute) is kept; a set by the names added or removed (a list another writer
    joined meanwhile is kept); else the attribute. Its values are the item's own serialisation (`Written`): no
    second one, and a map key is one name, whatever brackets or dots it holds (a page's path)."""
    actions: list[Action] = []
    after = _changed(item, before)
    for p in _plan(item.__class__):
        if p.attribute.is_hash_key or p.attribute.is_range_key or p.stored_as not in after:
            continue
        old, new = before.get(p.stored_as), after[p.stored_as]
        if old == new:
            continue
        name = p.stored_as
        if p.how == OTHER and p.kind == MAP and old is not None and new is not None:
            had, has = old[MAP], new[MAP]
            actions += [
                WrittenRemove((name, key)) if key not in has else WrittenSet((name, key), has[key])
                for key in sorted(set(had) | set(has))
                if had.get(key) != has.get(key)
            ]
        elif p.kind == STRING_SET:
            had_names, has_names = set((old or {}).get(STRING_SET, ())), set((new or {}).get(STRING_SET, ()))
            added, removed = has_names - had_names, had_names - has_names
            if not added and not removed:  # the same names in another order: nothing to write
                continue
            if added and removed:  # both at once (rare): the set as it is now
                actions.append(WrittenSet((name,), new))
            else:  # ADD creates the set, DELETE of its last names removes it
                verb, names = (WrittenAdd, added) if added else (WrittenDelete, removed)
                actions.append(verb((name,), {STRING_SET: sorted(names)}))
        else:
            actions.append(WrittenRemove((name,)) if new is None else WrittenSet((name,), new))
    return actions


def _changed(item: Model, before: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """The item's attributes that may differ from `before`, in DynamoDB's form (None: absent): since it was read
    when `before` is the item as read, else every attribute, as `serialize` writes it (or refuses it)."""
    read = item.__dict__.get("_values_read") if before is item.__dict__.get("_as_read") else None
    changed = _changed_since_read(item, before, read) if read is not None else None
    if changed is None:
        after = item.serialize()
        changed = {p.stored_as: after.get(p.stored_as) for p in _plan(item.__class__)}
    return changed


def _changed_since_read(
    item: Model, before: dict[str, Any], read: dict[str, Any]
) -> dict[str, dict[str, Any] | None] | None:
    """Every attribute but a string, number, boolean or time still as read (the very object, or one equal that is
    written alike); None when one is missing or refused (`serialize` then raises it as PynamoDB does)."""
    values = item.attribute_values
    changed: dict[str, dict[str, Any] | None] = {}
    try:
        for p in _plan(item.__class__):
            value = values.get(p.name)
            if p.immutable and p.stored_as in before and _same(value, read.get(p.name, _ABSENT)):
                continue
            wired = _value_wire(p, value, null_check=True) if value is not None else None
            if wired is None and not p.nullable:
                return None
            changed[p.stored_as] = {p.kind: wired} if wired is not None else None
    except (AttributeNullError, ValueError, TypeError):
        return None
    return changed


_ABSENT = object()
_EQUAL_WRITTEN_ALIKE = (str, int, bool, datetime)  # equal and of one type: the same text in DynamoDB (not floats: 0.0)


def _same(value: Any, read: Any) -> bool:
    """The value read, or one written as it was (a fact given again, equal)."""
    return value is read or (type(value) is type(read) and type(value) in _EQUAL_WRITTEN_ALIKE and value == read)


class Written(Action):
    """An update's action on a path of names with a value already in DynamoDB's form: PynamoDB's Update groups it
    by its verb (WrittenSet is a SetAction ...) and serialises it like its own."""

    def __init__(self, path: tuple[str, ...], value: dict[str, Any] | None = None) -> None:
        Action.__init__(self)
        self.path, self.value = path, value

    def serialize(self, placeholder_names: dict[str, str], expression_attribute_values: dict[str, Any]) -> str:
        names = []
        for part in self.path:
            placeholder = placeholder_names.get(part)
            if placeholder is None:
                placeholder = placeholder_names[part] = f"#{len(placeholder_names)}"
            names.append(placeholder)
        if self.value is None:
            return ".".join(names)
        value = f":{len(expression_attribute_values)}"
        expression_attribute_values[value] = self.value
        return self.format_string.format(".".join(names), value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({'.'.join(self.path)}, {self.value})"


class WrittenSet(Written, SetAction):
    pass


class WrittenRemove(Written, RemoveAction):
    pass


class WrittenAdd(Written, AddAction):
    pass


class WrittenDelete(Written, DeleteAction):
    pass


def key_of(item: Model) -> dict[str, dict[str, Any]]:
    """The item's key as DynamoDB takes it."""
    values = item.attribute_values
    return {
        p.stored_as: {p.kind: p.attribute.serialize(values[p.name])}
        for p in _key_plan(item.__class__)
        if values.get(p.name) is not None  # DynamoDB names a key missing
    }


@lru_cache(maxsize=128)
def _key_plan(model: Any) -> tuple[_Planned, ...]:
    return tuple(p for p in _plan(model) if p.attribute.is_hash_key or p.attribute.is_range_key)
