"""A list's page statement compiled once and kept, for the API's most frequent read.

Django builds and compiles a queryset anew on every request: for the document list (the
access helper's filter, the collection join, twenty columns, the count, the page) that was
as much CPU as the rest of the request. The statement is a pure function of plain values:
who reads (``apps.collections.access.Reader.key``: the team and the rules that apply), the
filters and the page's bounds; the same values build the same SQL and parameters, whatever
the database holds. So the view names those values (``PreparedList.key``) and a function that
builds the queryset from them through the access helper; the SQL, its parameters and its
columns' converters are kept per process (the last STATEMENTS_KEPT keys), and a key seen
before runs its statement without building anything. Rows are never kept: every request
reads the database.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import cached_property

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import ValuesIterable

STATEMENTS_KEPT = 512  # keys of every team and reader together; a few KiB each


class PreparedList:
    """A ``.values()`` list not built yet: ``build()`` makes its queryset from the values in
    ``key`` and nothing else (the paginator keeps its pages' statements by that key)."""

    ordered = True  # Django's paginator asks; the queryset carries the model's ordering

    def __init__(self, key: Hashable, build: Callable[[], QuerySet]):
        self.key, self.build = key, build

    @cached_property
    def queryset(self) -> QuerySet:
        return self.build()


@dataclass(frozen=True)
class Statement:
    """A compiled ``.values()`` query: what the ORM would send, and how it reads the rows."""

    alias: str
    sql: str
    params: tuple
    names: tuple[str, ...]
    converters: tuple  # (column index, converter functions, expression), as the ORM's

    @classmethod
    def of(cls, queryset: QuerySet) -> Statement:
        if queryset._iterable_class is not ValuesIterable:
            raise TypeError("only a .values() queryset's rows are read this way")
        query = queryset.query
        compiler = query.get_compiler(queryset.db)
        sql, params = compiler.as_sql()
        # The names as ValuesIterable gives them.
        names = (
            tuple(query.selected)
            if query.selected
            else (*query.extra_select, *query.values_select, *query.annotation_select)
        )
        columns = [column for column, _, _ in compiler.select[: compiler.col_count]]
        if len(columns) != len(names):
            raise TypeError(f"{len(columns)} columns for {len(names)} names")
        converters = tuple(
            (i, tuple(functions), expression)
            for i, (functions, expression) in compiler.get_converters(columns).items()
        )
        return cls(queryset.db, sql, tuple(params), names, converters)

    def rows(self) -> list[dict]:
        """The rows now, each value through its converters (SQLCompiler.apply_converters)."""
        connection = connections[self.alias]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, self.params)
            fetched = cursor.fetchall()
        names, converters = self.names, self.converters
        rows = []
        for row in fetched:
            row = list(row)
            for i, functions, expression in converters:
                value = row[i]
                for convert in functions:
                    value = convert(value, expression, connection)
                row[i] = value
            rows.append(dict(zip(names, row, strict=True)))
        return rows


class Statements:
    """The last ``size`` statements by key, shared by a process's request threads."""

    def __init__(self, size: int = STATEMENTS_KEPT):
        self.size = size
        self._kept: OrderedDict[Hashable, Statement] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], QuerySet]) -> Statement:
        with self._lock:
            statement = self._kept.get(key)
            if statement is not None:
                self._kept.move_to_end(key)
                return statement
        statement = Statement.of(build())  # outside the lock: two threads may both compile
        with self._lock:
            self._kept[key] = statement
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return statement

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()


STATEMENTS = Statements()
