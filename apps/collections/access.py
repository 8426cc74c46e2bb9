"""Which of a team's documents a person or an API key may read and write: the one place.

Beside the team boundary (``apps.teams.access``: outsiders get 404), collections draw a
boundary inside the team. Every path that reads team documents starts from
``readable_documents`` (or ``writable_documents`` to change them), and what carries their
text (conversations, writing projects, batches, jobs) from the ``visible_*`` querysets:

- Admins and owners read and write everything.
- Other members read the documents in no collection, in open collections, and in restricted
  collections that grant them access; they write (members, not viewers) the documents in no
  collection, in open collections, and in restricted ones that grant them read + write.
- An API key not scoped to collections reads the whole team (as before collections); a key
  scoped to collections reads only the documents in those collections (not the open rest).
  A key writes what it reads if it has the write scope.
- A conversation, writing project, batch or job that involves a document the reader may not
  read is hidden from that reader (404, absent from lists): its answers quote the text. So
  is a writing project or batch that names a collection the reader may not read.

Every queryset starts from the team; the exclusions are subqueries inside the same query.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import BigIntegerField, BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce

from apps.collections.models import Collection, CollectionAccess, CollectionDocument
from apps.teams.models import Membership, Role


@dataclass(frozen=True)
class Reader:
    """Who asks, reduced to what the rules need."""

    team: object
    sees_all: bool  # admins, owners and keys not scoped to collections
    writes: bool  # the role (member and up) or the key's write scope
    user_id: int | None = None
    key_id: int | None = None  # a key scoped to collections

    @property
    def key(self) -> tuple:
        """Every value of this reader that the readable_* and writable_* querysets read (the
        team by its id). They read nothing else, the database included (unlike visible_batches):
        the same key builds the same query (apps.api.statements keeps statements by it)."""
        return (self.team.pk, self.sees_all, self.writes, self.user_id, self.key_id)


def reader(team, who) -> Reader:
    """``who``: a Membership (UI views: request.membership), an API key, or a user (API
    sessions). A user who is not a member reads nothing."""
    if isinstance(who, Reader):
        return who
    if hasattr(who, "has_scope"):  # an API key (its team is checked by the access helper)
        scoped = getattr(who, "scoped", None)  # annotated by apps.api.keys.authenticate
        if scoped is None:
            scoped = who.pk is not None and who.collections.exists()
        return Reader(
            team,
            sees_all=not scoped,
            writes=who.has_scope("write"),
            key_id=who.pk if scoped else None,
        )
    membership = (
        who
        if isinstance(who, Membership)
        else (
            Membership.objects.filter(team=team, user=who).first()
            if getattr(who, "is_authenticated", False)
            else None
        )
    )
    if membership is None or membership.team_id != team.pk:
        return Reader(team, sees_all=False, writes=False, user_id=None)
    return Reader(
        team,
        sees_all=membership.has_role(Role.ADMIN),
        writes=membership.has_role(Role.MEMBER),
        user_id=membership.user_id,
    )


def _grants(r: Reader, write: bool) -> QuerySet:
    grants = CollectionAccess.objects.filter(user_id=r.user_id, collection__team=r.team)
    return (grants.filter(can_write=True) if write else grants).values("collection")


def readable_collections(team, who) -> QuerySet:
    r = reader(team, who)
    rows = team.collections.all()
    if r.sees_all:
        return rows
    if r.key_id is not None:
        return rows.filter(api_keys=r.key_id)
    if r.user_id is None:
        return rows.none()
    return rows.filter(Q(restricted=False) | Q(pk__in=_grants(r, write=False)))


def writable_collections(team, who) -> QuerySet:
    r = reader(team, who)
    if not r.writes:
        return team.collections.none()
    if r.sees_all or r.key_id is not None:
        return readable_collections(team, r)
    return team.collections.filter(Q(restricted=False) | Q(pk__in=_grants(r, write=True)))


def _documents(r: Reader, write: bool) -> QuerySet:
    documents = r.team.documents.all()
    if r.sees_all:
        return documents
    if r.key_id is not None:
        return documents.filter(filing__collection__api_keys=r.key_id)
    if r.user_id is None:
        return documents.none()
    closed = Collection.objects.filter(team=r.team, restricted=True).exclude(
        pk__in=_grants(r, write)
    )
    return documents.exclude(
        pk__in=CollectionDocument.objects.filter(collection__in=closed).values("document")
    )


def readable_documents(team, who) -> QuerySet:
    """The team's documents ``who`` may read: every page, search, question and API call that
    reads documents starts here."""
    return _documents(reader(team, who), write=False)


def writable_documents(team, who) -> QuerySet:
    """The team's documents ``who`` may change (rename, re-ingest, move, delete)."""
    r = reader(team, who)
    return _documents(r, write=True) if r.writes else team.documents.none()


def _hidden(r: Reader) -> QuerySet:
    return r.team.documents.exclude(pk__in=_documents(r, write=False).values("pk"))


def visible_conversations(team, who) -> QuerySet:
    r = reader(team, who)
    rows = team.conversations.all()
    return rows if r.sees_all else rows.exclude(documents__in=_hidden(r))


def _hidden_projects(r: Reader) -> QuerySet:
    """Projects with a reference document, a document written from, or a collection source
    the reader may not read."""
    hidden = _hidden(r)
    closed = r.team.collections.exclude(pk__in=readable_collections(r.team, r).values("pk"))
    return r.team.writing_projects.filter(
        Q(documents__in=hidden) | Q(drawn__in=hidden) | Q(collection__in=closed)
    )


def visible_projects(team, who) -> QuerySet:
    r = reader(team, who)
    rows = team.writing_projects.all()
    return rows if r.sees_all else rows.exclude(pk__in=_hidden_projects(r).values("pk"))


def visible_jobs(team, who) -> QuerySet:
    """Jobs, less those of a hidden document (its ingest and compress jobs: titles, results)
    and those whose conversation, writing project or batch is hidden."""
    r = reader(team, who)
    rows = team.jobs.all()
    if r.sees_all:
        return rows
    from apps.api.models import BatchItem
    from apps.chat.models import Message

    hidden = _hidden(r).values("pk")
    items = (
        BatchItem.objects.filter(batch__team=team)
        .exclude(batch__in=visible_batches(team, r))
        .values("pk")
    )
    replies = Message.objects.filter(
        conversation__team=team, conversation__documents__in=hidden
    ).values("pk")
    projects = _hidden_projects(r).values("pk")
    # A key the job does not have reads 0 (no row has that pk): NULL would hide the job.
    refs = {
        f"ref_{key}": Coalesce(Cast(KeyTextTransform(key, "params"), BigIntegerField()), 0)
        for key in ("document_id", "message_id", "project_id", "item_id")
    }
    return rows.alias(**refs).exclude(
        Q(ref_document_id__in=hidden)
        | Q(ref_message_id__in=replies)
        | Q(ref_project_id__in=projects)
        | Q(ref_item_id__in=items)
    )


# An item names its documents in "document_ids" (qa, write) or "document_id" (compress); a
# write item's result lists in "documents" those it was written from (its collection's).
_ITEM_DOCUMENTS = """EXISTS (
    SELECT 1 FROM jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(api_batchitem.input -> 'document_ids') = 'array'
             THEN api_batchitem.input -> 'document_ids' ELSE '[]'::jsonb END
        || CASE WHEN jsonb_typeof(api_batchitem.input -> 'document_id') = 'number'
                THEN jsonb_build_array(api_batchitem.input -> 'document_id')
                ELSE '[]'::jsonb END
        || CASE WHEN jsonb_typeof(api_batchitem.result -> 'documents') = 'array'
                THEN api_batchitem.result -> 'documents' ELSE '[]'::jsonb END
    ) AS d(id) WHERE d.id = ANY(%s))"""


def visible_batches(team, who) -> QuerySet:
    r = reader(team, who)
    rows = team.batches.all()
    if r.sees_all:
        return rows
    if r.key_id is None and r.user_id is None:
        return rows.none()
    hidden = [str(pk) for pk in _hidden(r).values_list("pk", flat=True)]
    from apps.api.models import BatchItem

    # Write items may name a collection as their source.
    closed = list(
        team.collections.exclude(pk__in=readable_collections(team, r).values("pk")).values_list(
            "pk", flat=True
        )
    )
    if closed:
        rows = rows.exclude(
            pk__in=BatchItem.objects.filter(batch__team=team, input__collection__in=closed).values(
                "batch_id"
            )
        )
    if not hidden:
        return rows
    # Read now, as a list: the SQL names the item table, which a subquery would alias.
    # A constant SQL text; the ids travel as a parameter.
    over_hidden = (
        BatchItem.objects.filter(batch__team=team)
        .alias(
            hits=RawSQL(_ITEM_DOCUMENTS, [hidden], output_field=BooleanField())  # noqa: S611
        )
        .filter(hits=True)
        .values_list("batch_id", flat=True)
        .distinct()
    )
    return rows.exclude(pk__in=list(over_hidden))
