"""Into HighLevel: leads from a SQL table become contacts, and a two-way sync of chosen fields.

* :mod:`.dag`: ``build_leads_dag`` (``ghl_leads_to_contacts``) and ``build_two_way_dag``
  (``ghl_two_way_sync``); imported by the dag-processor, so it imports nothing heavy.
* :mod:`.runner`: what the tasks run; :mod:`.flow`: the lead flow (match, create, update, tasks,
  note, link table); :mod:`.two_way`: conflict rules and echo suppression over the reconcile.
* :mod:`.source`: the lead source (common-sql, or the embedded SQLite demo leads);
  :mod:`.mapping`: the reverse mapping; :mod:`.templates`: follow-up task templates.

Documented in ``docs/leads.md``. This package ``__init__`` stays empty of imports, so that parsing
a DAG file that uses :mod:`.dag` stays light.
"""
