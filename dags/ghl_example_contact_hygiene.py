"""Contact hygiene: dedupe-safe upsert, enrichment, tags, followers, businesses and exports.

Shows the contact, tag, follower and business operators working together on real data:

1. look the incoming contact up by email (duplicate check), then upsert it (idempotent);
2. read it back, enrich it (website, city), re-tag it, make the account owner follow it;
3. export every VIP to a JSON Lines file (ObjectStoragePath) instead of XCom, and list a page of
   contacts with the legacy endpoint;
4. tag a small batch of recent contacts in bulk, attach them to a business, list the business's
   contacts, then detach them again;
5. create and delete a scratch contact.

Every write except the scratch create is idempotent, so the DAG can be re-run safely.
Connection: ``ghl_default``. Exports go under ``params.export_dir`` (default: the temp dir).
"""

from __future__ import annotations

import tempfile
from datetime import datetime

from airflow.sdk import DAG, Param, chain, task
from airflow_provider_contacts.operators.businesses import (
    GHLBulkUpdateContactsBusinessOperator,
    GHLGetContactsByBusinessOperator,
)
from airflow_provider_contacts.operators.contacts import (
    GHLCreateContactOperator,
    GHLDeleteContactOperator,
    GHLGetContactOperator,
    GHLGetContactsOperator,
    GHLGetDuplicateContactOperator,
    GHLSearchContactsOperator,
    GHLUpdateContactOperator,
    GHLUpsertContactOperator,
)
from airflow_provider_contacts.operators.followers import GHLAddFollowersOperator, GHLRemoveFollowersOperator
from airflow_provider_contacts.operators.tags import GHLAddTagsOperator, GHLBulkUpdateTagsOperator, GHLRemoveTagsOperator

CONTACT_ID = "{{ ti.xcom_pull(task_ids='upsert_contact')['id'] }}"
EXPORT_DIR = "{{ params.export_dir }}/{{ dag.dag_id }}/{{ run_id | replace(':', '-') | replace('+', '-') }}"

with DAG(
    dag_id="ghl_example_contact_hygiene",
    description="Upsert, enrich, tag, follow, export and group contacts by business",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={
        "email": Param("jane.doe.example@example.com", type="string", description="Email of the incoming contact"),
        "owner_user_id": Param("sx6wyHhbFdRXh302Lunr", type="string", description="User who follows the contact"),
        "business_id": Param("63b7ec34ea409a9a8bd2a4ff", type="string"),
        "export_dir": Param(tempfile.gettempdir(), type="string", description="Directory or object-store URL of exports"),
    },
    tags=["ghl", "example"],
) as dag:
    find_duplicate = GHLGetDuplicateContactOperator(task_id="find_duplicate", email="{{ params.email }}")
    upsert_contact = GHLUpsertContactOperator(
        task_id="upsert_contact",
        body={"email": "{{ params.email }}", "firstName": "Jane", "lastName": "Doe", "source": "airflow", "tags": ["example-dag"]},
    )
    get_contact = GHLGetContactOperator(task_id="get_contact", contact_id=CONTACT_ID)
    enrich = GHLUpdateContactOperator(task_id="enrich", contact_id=CONTACT_ID, body={"website": "https://acme.example.com", "city": "Austin", "country": "US"})
    tag_vip = GHLAddTagsOperator(task_id="tag_vip", contact_id=CONTACT_ID, tags=["vip"])
    untag_example = GHLRemoveTagsOperator(task_id="untag_example", contact_id=CONTACT_ID, tags=["example-dag"])
    follow = GHLAddFollowersOperator(task_id="owner_follows", contact_id=CONTACT_ID, followers=["{{ params.owner_user_id }}"])
    unfollow = GHLRemoveFollowersOperator(task_id="owner_unfollows", contact_id=CONTACT_ID, followers=["{{ params.owner_user_id }}"])

    export_vips = GHLSearchContactsOperator(
        task_id="export_vips",
        filters=[{"field": "tags", "operator": "eq", "value": "vip"}],
        sort=[{"field": "dateUpdated", "direction": "desc"}],
        output_path=EXPORT_DIR + "/vips.jsonl",
    )
    legacy_page = GHLGetContactsOperator(task_id="legacy_first_page", limit=50, max_records=50)
    recent = GHLSearchContactsOperator(
        task_id="recent_contacts",
        sort=[{"field": "dateAdded", "direction": "desc"}],
        page_limit=100,
        max_records=25,
    )

    @task
    def ids_of(result: dict) -> list[str]:
        """Ids of the records an upstream search returned in XCom."""
        return [record["id"] for record in result["records"]]

    batch_ids = ids_of(recent.output)
    bulk_tag = GHLBulkUpdateTagsOperator(task_id="bulk_tag", action="add", contact_ids=batch_ids, tags=["q3-review"])
    attach = GHLBulkUpdateContactsBusinessOperator(task_id="attach_to_business", contact_ids=batch_ids, business_id="{{ params.business_id }}")
    export_business = GHLGetContactsByBusinessOperator(
        task_id="export_business_contacts", business_id="{{ params.business_id }}", output_path=EXPORT_DIR + "/business.jsonl"
    )
    detach = GHLBulkUpdateContactsBusinessOperator(task_id="detach_from_business", contact_ids=batch_ids, business_id=None)
    bulk_untag = GHLBulkUpdateTagsOperator(task_id="bulk_untag", action="remove", contact_ids=batch_ids, tags=["q3-review"])

    scratch = GHLCreateContactOperator(task_id="create_scratch_contact", body={"firstName": "Scratch", "lastName": "{{ run_id }}"})
    delete_scratch = GHLDeleteContactOperator(
        task_id="delete_scratch_contact", contact_id="{{ ti.xcom_pull(task_ids='create_scratch_contact')['id'] }}"
    )

    chain(find_duplicate, upsert_contact, get_contact, enrich, tag_vip, untag_example, follow, unfollow, export_vips)
    chain(recent, batch_ids, bulk_tag, attach, export_business, detach, bulk_untag)
    chain(legacy_page, scratch, delete_scratch)
