"""The system declaration is self-consistent: every reference points at something declared."""

from __future__ import annotations

from pathlib import Path

from shared.system.resources import SYSTEM

ROOT = Path(__file__).resolve().parents[2]


def test_names_are_unique() -> None:
    for names in (
        [t.name for t in SYSTEM.topics],
        [s.name for s in SYSTEM.subscriptions],
        [t.name for t in SYSTEM.bigtable_tables],
        [f"{t.dataset}.{t.name}" for t in SYSTEM.bigquery_tables],
        [f.name for f in SYSTEM.functions],
        [j.name for j in SYSTEM.schedules()],
        [d.name for d in SYSTEM.firestore_databases],
    ):
        assert len(names) == len(set(names)), names


def test_subscriptions_reference_declared_topics_and_functions() -> None:
    topics = {t.name for t in SYSTEM.topics}
    functions = {f.name: f for f in SYSTEM.functions}
    for sub in SYSTEM.subscriptions:
        assert sub.topic in topics, sub
        assert sub.dead_letter_topic in topics, sub  # every subscription has one
        # Only the operators' terminal subscriptions dead-letter onto their own topic.
        assert (sub.dead_letter_topic == sub.topic) == sub.name.endswith("-inspect"), sub
        if sub.push_function:
            assert functions[sub.push_function].signature == "cloudevent", sub


def test_every_dead_letter_topic_can_be_inspected() -> None:
    dead_letter_topics = {s.dead_letter_topic for s in SYSTEM.subscriptions if s.dead_letter_topic}
    inspected = {s.topic for s in SYSTEM.subscriptions if s.push_function is None}
    assert dead_letter_topics <= inspected


def test_functions_exist_on_disk_and_jobs_target_http_functions_or_workflows() -> None:
    for function in SYSTEM.functions:
        assert (ROOT / "functions" / function.name / "main.py").is_file(), function.name
    http = {f.name for f in SYSTEM.functions if f.signature == "http"}
    workflows = {w.name for w in SYSTEM.workflows}
    for job in SYSTEM.schedules():
        assert job.function in http or job.workflow in workflows, job
    for workflow in SYSTEM.workflows:
        assert (ROOT / "workflows" / f"{workflow.name}.workflows.yaml").is_file()
        assert set(workflow.calls) <= http


def test_bigquery_tables_are_in_declared_datasets_and_partition_on_a_column() -> None:
    datasets = {d.name for d in SYSTEM.bigquery_datasets}
    for table in SYSTEM.bigquery_tables:
        assert table.dataset in datasets
        columns = {c.name for c in table.columns}
        if table.partition_field:
            assert table.partition_field in columns
        assert set(table.clustering) <= columns


def test_rewards_database_is_separate() -> None:
    assert {d.name for d in SYSTEM.firestore_databases} >= {"(default)", "rewards"}
