"""A tester plays the CRM user through the admin surface: changes show up in the API, dumps show
everything, counters count, and the admin surface stays loopback-only."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from ghl_sandbox.app import create_app
from ghl_sandbox.client import SandboxAdminError
from ghl_sandbox.config import SandboxConfig
from ghl_sandbox.testing import SandboxServer


def test_admin_mutations_are_visible_through_the_api(sandbox: SandboxServer) -> None:
    admin = sandbox.admin
    contact = admin.create_contact(firstName="Ольга", lastName="Иванова", email="olga@example.ru")
    task = admin.create_task(contact["id"], title="Перезвонить")
    note = admin.create_note(contact["id"], body="Заметка")
    with sandbox.client() as api:
        assert api.get(f"/contacts/{contact['id']}").json()["contact"]["fullNameLowerCase"] == "ольга иванова"
        assert api.get(f"/contacts/{contact['id']}/tasks").json()["tasks"][0]["title"] == "Перезвонить"
        admin.update_task(contact["id"], task["id"], completed=True)
        assert api.get(f"/contacts/{contact['id']}/tasks/{task['id']}").json()["task"]["completed"] is True
        admin.update_note(contact["id"], note["id"], body="Edited")
        assert api.get(f"/contacts/{contact['id']}/notes/{note['id']}").json()["note"]["body"] == "Edited"
        admin.delete_note(contact["id"], note["id"])
        admin.delete_task(contact["id"], task["id"])
        assert api.get(f"/contacts/{contact['id']}/notes").json()["notes"] == []
        updated = admin.update_contact(contact["id"], city="Москва")
        assert updated["dateUpdated"] >= contact["dateUpdated"]
        admin.delete_contact(contact["id"])
        gone = api.get(f"/contacts/{contact['id']}")  # as on the live API: 400, not 404
        assert gone.status_code == 400 and gone.json()["message"] == "Contact not found"
    assert admin.counters()["total"] == 6  # admin calls are not counted


def test_dump_holds_every_contact_task_note_and_custom_field(sandbox: SandboxServer) -> None:
    dump = sandbox.admin.dump()
    assert len(dump["contacts"]) == 200 and dump["customFields"]
    contact_ids = {c["id"] for c in dump["contacts"]}
    assert all(t["contactId"] in contact_ids for t in dump["tasks"])
    assert all(n["contactId"] in contact_ids for n in dump["notes"])
    assert all(len(c["id"]) == 20 and c["id"].isalnum() for c in dump["contacts"])
    assert all(c["dateAdded"].endswith("Z") and len(c["dateAdded"]) == 24 for c in dump["contacts"])
    assert any(not c["fullNameLowerCase"].isascii() for c in dump["contacts"])
    assert any(c["email"] is None for c in dump["contacts"])
    assert len({c["phone"][:2] for c in dump["contacts"] if c["phone"]}) > 2  # mixed phone formats


def test_counters_count_by_operation_and_reset(sandbox: SandboxServer) -> None:
    with sandbox.client() as api:
        api.post("/contacts/search", json={"locationId": sandbox.location_id})
        api.post("/contacts/search", json={"locationId": sandbox.location_id})
        api.get(f"/locations/{sandbox.location_id}/customFields")
    with sandbox.client(token="bogus") as api:
        api.get(f"/locations/{sandbox.location_id}/customFields")
    counters = sandbox.admin.counters()
    # Per (integration, location) admission stats of the rate limiter: the private token's 3 calls
    # (the bogus token never reached the limiter).
    limits = counters.pop("limits")
    assert [(s["location_id"], s["admitted"], s["throttled"]) for s in limits] == [(sandbox.location_id, 3, 0)]
    assert counters == {"total": 4, "by_operation": {"search-contacts-advanced": 2, "get-custom-fields": 2},
                        "status_429": 0, "status_401": 1, "faults": 0, "faults_by_kind": {},
                        "lost_answers_by_mode": {}, "applied_then_lost": 0, "applied_then_lost_by_operation": {},
                        "oauth": {"access_tokens_issued": 0, "authorization_code_grants": 0, "refresh_grants": 0,
                                  "refresh_token_reuses": 0, "unknown_refresh_tokens": 0,
                                  "expired_access_token_calls": 0, "invalid_grants": 0}}
    sandbox.admin.reset_counters()
    assert sandbox.admin.counters()["total"] == 0 and sandbox.admin.counters()["limits"] == []


def test_reset_restores_the_seeded_state_and_the_same_identifiers(sandbox: SandboxServer) -> None:
    before = sandbox.admin.dump()
    sandbox.admin.delete_contact(before["contacts"][0]["id"])
    sandbox.admin.configure(fault_rate=0.5)
    info = sandbox.admin.reset()
    assert info["location_id"] == sandbox.location_id and info["token"] == sandbox.token
    assert sandbox.admin.dump() == before
    assert sandbox.admin.config()["fault_rate"] == 0.0
    other = sandbox.admin.reset(seed=8, contacts=10)
    assert other["location_id"] != before["locationId"] and sandbox.location_id == other["location_id"]
    assert len(sandbox.admin.dump()["contacts"]) == 10


def test_same_seed_same_data_across_servers(sandbox: SandboxServer, sandbox_factory) -> None:
    twin = sandbox_factory(seed=7, contacts=200)
    assert twin.location_id == sandbox.location_id and twin.token == sandbox.token
    assert twin.admin.dump() == sandbox.admin.dump()


def test_configure_rejects_unknown_fields_and_data_shaping_ones(sandbox: SandboxServer) -> None:
    with pytest.raises(SandboxAdminError, match="unknown SandboxConfig field"):
        sandbox.admin.configure(fault_ratio=0.1)
    with pytest.raises(SandboxAdminError, match="reset"):
        sandbox.admin.configure(contacts=5)


def _non_loopback_address() -> str | None:
    """A local non-loopback IPv4 address (a UDP "connect" sends nothing), or None."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.123", 9))
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_admin_surface_refuses_a_non_loopback_peer_over_http(sandbox: SandboxServer) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    with httpx.Client(transport=httpx.HTTPTransport(local_address=address)) as outsider:
        refused = outsider.get(f"{sandbox.base_url}/_sandbox/dump")
        api_call = outsider.get(f"{sandbox.base_url}/contacts/", params={"locationId": sandbox.location_id},
                                headers={"Authorization": f"Bearer {sandbox.token}", "Version": "2021-07-28"})
    assert refused.status_code == 403 and address in refused.json()["message"]
    assert api_call.status_code == 200  # the API itself is not restricted


def test_admin_surface_refuses_non_loopback_clients() -> None:
    app = create_app(SandboxConfig(contacts=2))

    async def call(client_host: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client_host, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            return await client.get("/_sandbox/info")

    remote = asyncio.run(call("203.0.113.9"))
    local = asyncio.run(call("127.0.0.1"))
    assert remote.status_code == 403 and "loopback" in remote.json()["message"]
    assert local.status_code == 200


def test_several_seeded_locations_under_one_company(sandbox_factory) -> None:
    sb = sandbox_factory(locations=3, contacts=4)
    info = sb.admin.info()
    assert len(info["locations"]) == 3 and info["location_id"] == info["locations"][0]
    dumps = [sb.admin.dump(loc) for loc in info["locations"]]
    assert [len(d["contacts"]) for d in dumps] == [4, 4, 4]
    assert len({c["id"] for d in dumps for c in d["contacts"]}) == 12


def test_second_location_has_its_own_data_and_settings(sandbox: SandboxServer) -> None:
    second = sandbox.admin.add_location(contacts=4)
    assert len(sandbox.admin.dump(second)["contacts"]) == 4
    settings = sandbox.admin.set_location_settings(second, allow_duplicates=True)
    assert settings == {"locationId": second, "allow_duplicates": True}
    assert sandbox.admin.set_location_settings(sandbox.location_id, allow_duplicates=None)["allow_duplicates"] is False
