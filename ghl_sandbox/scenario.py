"""A standard set of changes made through the sandbox's admin surface, as a CRM user would.

Used by the demo, the tests and the benchmark to show that runs after the first converge: contacts
created (with a task and a note), updated and deleted; tasks and notes created, edited, completed
and deleted on contacts that themselves stay untouched (so only the sweep can see those).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Mutations", "apply_mutations"]


@dataclass
class Mutations:
    """Ids touched by :func:`apply_mutations`, by kind."""

    contacts_created: list[str] = field(default_factory=list)
    contacts_updated: list[str] = field(default_factory=list)
    contacts_deleted: list[str] = field(default_factory=list)
    tasks_created: list[str] = field(default_factory=list)
    tasks_edited: list[str] = field(default_factory=list)
    tasks_completed: list[str] = field(default_factory=list)
    tasks_deleted: list[str] = field(default_factory=list)
    notes_created: list[str] = field(default_factory=list)
    notes_edited: list[str] = field(default_factory=list)
    notes_deleted: list[str] = field(default_factory=list)
    #: contacts whose tasks/notes changed while the contact itself did not (``dateUpdated`` unchanged).
    activity_only_contacts: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        """Counts per kind."""
        return {k: len(v) for k, v in asdict(self).items()}


def apply_mutations(admin: Any, location_id: str | None = None, *, seed: int = 11, scale: int = 1) -> Mutations:
    """Change the sandbox location through ``admin`` (a ``SandboxAdmin``); ``scale`` multiplies counts.

    Needs a location with at least ``12 * scale`` contacts that have tasks and notes.
    """
    rng = random.Random(seed)
    truth = admin.dump(location_id)
    out = Mutations()
    contacts = sorted(truth["contacts"], key=lambda c: c["id"])
    tasks_by: dict[str, list[dict[str, Any]]] = {}
    for task in truth["tasks"]:
        tasks_by.setdefault(task["contactId"], []).append(task)
    notes_by: dict[str, list[dict[str, Any]]] = {}
    for note in truth["notes"]:
        notes_by.setdefault(note["contactId"], []).append(note)
    pool = contacts[:]
    rng.shuffle(pool)
    with_tasks = [c["id"] for c in pool if len(tasks_by.get(c["id"], [])) >= 2 and notes_by.get(c["id"])]
    plain = [c["id"] for c in pool if c["id"] not in set(with_tasks)]
    activity = with_tasks[: 3 * scale]
    doomed = with_tasks[3 * scale : 4 * scale] + plain[: scale]
    updated = plain[scale : 4 * scale]
    if len(activity) < 3 * scale or len(updated) < 3 * scale:
        raise ValueError("the location is too small for apply_mutations at this scale")

    for i in range(3 * scale):
        created = admin.create_contact(
            location_id,
            firstName=f"Demo{i}",
            lastName="Créé",
            email=f"  Demo.{seed}.{i}@Example.COM ",
            phone=f"(415) 555-{1000 + i:04d}",
            tags=["demo", "new"],
        )
        cid = created["id"]
        out.contacts_created.append(cid)
        out.tasks_created.append(admin.create_task(cid, title=f"Welcome call {i}", body="first contact")["id"])
        out.notes_created.append(admin.create_note(cid, body=f"Created by the demo ({i})")["id"])
    for cid in updated:
        admin.update_contact(cid, city=f"Updated City {rng.randint(1, 999)}", tags=["updated"])
        out.contacts_updated.append(cid)
    for cid in doomed:
        admin.delete_contact(cid)
        out.contacts_deleted.append(cid)
    for cid in activity:
        tasks, notes = tasks_by[cid], notes_by[cid]
        out.tasks_created.append(admin.create_task(cid, title="Sweep-only task", body="added later")["id"])
        admin.update_task(cid, tasks[0]["id"], title=tasks[0]["title"] + " (edited)")
        out.tasks_edited.append(tasks[0]["id"])
        admin.update_task(cid, tasks[1]["id"], completed=not tasks[1]["completed"])
        out.tasks_completed.append(tasks[1]["id"])
        if len(tasks) > 2:
            admin.delete_task(cid, tasks[2]["id"])
            out.tasks_deleted.append(tasks[2]["id"])
        out.notes_created.append(admin.create_note(cid, body="Sweep-only note")["id"])
        admin.update_note(cid, notes[0]["id"], body=notes[0]["body"] + " (edited)")
        out.notes_edited.append(notes[0]["id"])
        if len(notes) > 1:
            admin.delete_note(cid, notes[1]["id"])
            out.notes_deleted.append(notes[1]["id"])
        out.activity_only_contacts.append(cid)
    return out
