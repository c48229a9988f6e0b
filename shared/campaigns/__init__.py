"""Campaigns: what brands run on retailers' sites, and the CSMs' back office.

``model`` (a campaign: retailers, period, targeting, experience, budget), ``admin`` (roles,
validation, audit), ``api`` (the JSON API and the pages of ``back_office``), ``report`` (a
campaign's performance and uplift against its control group, in BigQuery).

Entry points: ``api.handle`` with ``composition.campaigns`` (``functions/campaigns``),
``report.campaign_report``,
``admin.issue_csm_key``, ``commands`` (``cartwise report``, ``csm-key``).
Stores: Firestore ``campaigns``, ``campaign_audit``, ``csm_accounts``; reads the BigQuery
read models (reports, the product catalogue check).
"""
