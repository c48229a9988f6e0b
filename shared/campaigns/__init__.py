"""Campaigns: what brands run on retailers' sites, and the CSMs' back office.

``model`` (a campaign: retailers, period, targeting, experience, budget), ``admin`` (roles,
validation, audit), ``sessions`` (the back office's server-side sessions, CSRF tokens and
login limit), ``api`` (the JSON API and the pages of ``back_office``), ``report`` (a
campaign's performance and uplift against its control group, in BigQuery), ``catalogue``
(the products, brands and categories seen at retailers: the pickers' search, the check of
a campaign's targets with the nearest known names).

Entry points: ``api.handle`` with ``composition.campaigns`` (``functions/campaigns``),
``report.campaign_report``,
``admin.issue_csm_key``, ``commands`` (``cartwise report``, ``csm-key``).
Stores: Firestore ``campaigns``, ``campaign_audit`` (``(default)``), ``csm_accounts``
(database ``credentials``, read only), ``sessions`` (database ``back-office``,
``firestore_sessions``); reads the BigQuery read models (reports, the catalogue:
``bigquery_catalog``).
"""
