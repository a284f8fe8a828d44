"""Great Expectations suites as code: one module per layer, reviewed like code.

Each suite is a function returning the expectations for one published relation;
``yibao.validate`` runs them on DuckDB through GE's SQL data source, so every
expectation compiles to SQL and no table is pulled into pandas.
"""
