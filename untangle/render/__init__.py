"""Pure renderers of a Step Functions definition (a JSON-loaded ASL dict).

`diagram`: Mermaid, Graphviz DOT and terminal text. `cost`: monthly cost and latency before (a
hand-written orchestrator Lambda) and after (Standard or Express state machine).
"""
