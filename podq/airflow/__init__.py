"""podq's executor for Apache Airflow 3: ``[core] executor = podq.airflow.executor.PodqExecutor``.

Installed with the ``airflow`` extra (``pip install 'podq[airflow]'``); docs/airflow.md.
"""
