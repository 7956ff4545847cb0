"""Loops in handlers: what becomes a Map, a Parallel, unrolled steps, and what is refused because
the state machine would silently compute something else. Each positive case has near misses."""

from __future__ import annotations

from pathlib import Path

import pytest

from untangle.plan import plan
from untangle.scan import ScanOptions, load_tree

HEADER = "import json\nimport time\n"
HEADER += "from concurrent.futures import ThreadPoolExecutor, as_completed\n"
HEADER += "import boto3\n\nlam = boto3.client('lambda')\n\n\n"
HEADER += "def call(name, p):\n"
HEADER += "    r = lam.invoke(FunctionName=name, Payload=json.dumps(p))\n"
HEADER += "    return json.loads(r['Payload'].read())\n\n\n"


def _plan(tmp_path: Path, body: str) -> tuple[str, str]:
    """(status, reasons and notes as one text) of the handler `def handler(event, context):`."""
    (tmp_path / "app.py").write_text(HEADER + "def handler(event, context):\n" + body)
    tree = load_tree([str(tmp_path)], ScanOptions(cache_dir=None))
    [planned] = plan(tree.program, tree.templates, lambda p: Path(p).read_text())
    workflow = planned.workflow
    said = [r.message for r in workflow.reasons] + [n.message for n in workflow.notes]
    return workflow.status, "\n".join(said)


CASES = [
    pytest.param(
        "    last = None\n"
        "    for x in event['xs']:\n"
        "        last = call('work', x)\n"
        "    return last\n",
        "not_converted",
        "`last`, set inside the loop",
        id="a-local-set-in-a-map-read-after-it",
    ),
    pytest.param(
        "    last = None\n"
        "    for x in event['xs']:\n"
        "        last = call('work', x)\n"
        "    return {'done': True}\n",
        "converted",
        "the Map runs up to 10 at once",
        id="near-miss:set-in-the-map-never-read-after",
    ),
    pytest.param(
        "    count = 0\n"
        "    for x in event['xs']:\n"
        "        call('work', x)\n"
        "        count += 1\n"
        "    return {'count': count}\n",
        "converted",
        "the Map runs up to 10 at once",
        id="a-counter-counted-by-a-map",
    ),
    pytest.param(
        "    count = 0\n"
        "    for x in event['xs']:\n"
        "        call('work', x)\n"
        "        count += 2\n"
        "    return {'count': count}\n",
        "converted",
        "the Map runs up to 10 at once",
        id="a-counter-summed-after-a-map",
    ),
    pytest.param(
        "    count = 0\n"
        "    for x in event['xs']:\n"
        "        call('work', {'after': count})\n"
        "        count += 1\n"
        "    return {'count': count}\n",
        "not_converted",
        "`count`",
        id="a-counter-read-in-the-rounds-of-a-map",
    ),
    pytest.param(
        "    done = []\n"
        "    for x in event['xs']:\n"
        "        done.append(call('work', x))\n"
        "    return {'count': len(done)}\n",
        "converted",
        "the Map runs up to 10 at once",
        id="near-miss:results-appended-to-a-fresh-list",
    ),
    pytest.param(
        "    done = []\n"
        "    for t in event['tenants']:\n"
        "        for r in t['regions']:\n"
        "            done.append(call('work', {'t': t['id'], 'r': r}))\n"
        "    return {'count': len(done)}\n",
        "converted",
        "the Map runs up to 10 at once",
        id="a-list-filled-inside-nested-loops",
    ),
    pytest.param(
        "    done = []\n"
        "    for t in event['tenants']:\n"
        "        if len(done) > 5:\n"
        "            call('alert', {'n': len(done)})\n"
        "        for r in t['regions']:\n"
        "            done.append(call('work', {'t': t['id'], 'r': r}))\n"
        "    return {'count': len(done)}\n",
        "not_converted",
        "a list that changes across the loop's iterations",
        id="near-miss:the-outer-loop-reads-the-list-its-inner-loop-fills",
    ),
    pytest.param(
        "    for t in event['tenants']:\n"
        "        for r in t['regions']:\n"
        "            call('work', {'t': t['id'], 'r': r})\n"
        "    return {'ok': True}\n",
        "converted",
        "the Map runs up to 10 at once",
        id="near-miss:nested-loops-for-their-effect",
    ),
    pytest.param(
        "    state = event\n"
        "    for name in ('extract', 'transform', 'load'):\n"
        "        state = call(name, state)\n"
        "        if state.get('status') == 'FAILED':\n"
        "            break\n"
        "    return state\n",
        "converted",
        "unrolled: its steps run one after another",
        id="fixed-steps-feeding-each-other",
    ),
    pytest.param(
        "    results = {}\n"
        "    for name in ('email', 'sms'):\n"
        "        results[name] = call(name, event)\n"
        "    return results\n",
        "converted",
        "became a Parallel state",
        id="near-miss:fixed-steps-independent-of-each-other",
    ),
    pytest.param(
        "    state = event\n"
        "    for name in ('extract', 'transform'):\n"
        "        state = call(name, state)\n"
        "        if state.get('status') == 'FAILED':\n"
        "            stopped_at = name\n"
        "            break\n"
        "    return {'state': state, 'stopped': name}\n",
        "converted",
        "unrolled: its steps run one after another",
        id="a-local-that-depends-on-where-the-loop-broke",
    ),
    pytest.param(
        "    for name in ('extract', 'transform'):\n"
        "        raw = lam.invoke(FunctionName=name, Payload=json.dumps(event))\n"
        "        if event.get('stop') == name:\n"
        "            break\n"
        "    return json.loads(raw['Payload'].read())\n",
        "converted",
        "unrolled: its steps run one after another",
        id="each-step-stores-its-response-in-the-same-variable",
    ),
]


CASES += [
    pytest.param(
        "    status = call('status', event)\n"
        "    while status['state'] == 'RUNNING':\n"
        "        time.sleep(10)\n"
        "        status = call('status', event)\n"
        "    return status\n",
        "converted",
        "the while loop became a Choice that loops back",
        id="polling-while-loop",
    ),
    pytest.param(
        "    while True:\n"
        "        status = call('status', event)\n"
        "        if status['done']:\n"
        "            return status\n"
        "        time.sleep(5)\n",
        "converted",
        "the `while True` loop became states that loop back",
        id="polling-until-a-return",
    ),
    pytest.param(
        "    n = 0\n    while n < 3:\n        n += 1\n    return call('status', {'n': n})\n",
        "converted",
        "",
        id="a-while-loop-without-invokes-is-one-new-function",
    ),
    pytest.param(
        "    while call('status', event)['state'] == 'RUNNING':\n"
        "        time.sleep(10)\n"
        "    return {'done': True}\n",
        "not_converted",
        "an invoke in a while condition",
        id="an-invoke-in-the-while-condition",
    ),
    pytest.param(
        "    seen = []\n"
        "    while len(seen) < 3:\n"
        "        seen = seen + [call('status', event)]\n"
        "    return {'n': len(seen)}\n",
        "converted",
        "the while loop became a Choice that loops back",
        id="a-list-rebuilt-each-round",
    ),
]


CASES += [
    pytest.param(
        "    with ThreadPoolExecutor(max_workers=4) as pool:\n"
        "        futures = [pool.submit(call, 'work', x) for x in event['xs']]\n"
        "        results = [f.result() for f in futures]\n"
        "    return {'results': results}\n",
        "converted",
        "",
        id="thread-pool-submit-then-result",
    ),
    pytest.param(
        "    with ThreadPoolExecutor(max_workers=4) as pool:\n"
        "        futures = [pool.submit(call, 'work', x) for x in event['xs']]\n"
        "        done = []\n"
        "        for f in as_completed(futures):\n"
        "            done.append(f.result())\n"
        "    return {'n': len(done)}\n",
        "converted",
        "not the order they finished in",
        id="thread-pool-submit-as-completed",
    ),
    pytest.param(
        "    out = call('list', event)\n"
        "    names = []\n"
        "    for item in out['items']:\n"
        "        if item['active']:\n"
        "            names.append(item['name'])\n"
        "    return {'names': names}\n",
        "converted",
        "",
        id="a-loop-of-local-computation-into-a-fresh-list",
    ),
    pytest.param(
        "    out = call('list', event)\n"
        "    names = ['first']\n"
        "    for item in out['items']:\n"
        "        names.append(item['name'])\n"
        "    return {'names': names}\n",
        "converted",
        "",
        id="appending-to-a-list-that-is-not-fresh-is-one-new-function",
    ),
]


@pytest.mark.parametrize(("body", "status", "said"), CASES)
def test_loops(tmp_path: Path, body: str, status: str, said: str) -> None:
    got_status, got_said = _plan(tmp_path, body)
    assert got_status == status, got_said
    assert said in got_said
