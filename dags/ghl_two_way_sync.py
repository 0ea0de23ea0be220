"""Two-way sync of chosen fields between a lead table and HighLevel (manual runs; schedule it
instead of ghl_leads_to_contacts, not beside it: it runs the lead flow itself).

``reconcile`` (HighLevel -> the target tables) then ``sync_both_ways``: changes on either side
cross over, conflicts are settled per field (``newest``, ``highlevel``, ``source``: the leads
mapping's ``leads.two_way``) and listed in the report, the provider's own writes are never read
back as changes. docs/leads.md.
"""

from __future__ import annotations

from airflow_provider_contacts.sync.leads.dag import build_two_way_dag

dag = build_two_way_dag("ghl_two_way_sync")
