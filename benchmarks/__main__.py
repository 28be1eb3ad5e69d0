"""``python -m benchmarks`` (``make bench``): every benchmark, one after the other."""

from benchmarks import (
    as_installed,
    bench_content,
    bench_fanout,
    bench_faq,
    bench_history,
    bench_inbound,
    bench_pg_history,
    bench_pg_tickets,
    bench_postgres,
    bench_split,
    bench_startup,
    bench_tickets,
)

if __name__ == "__main__":
    as_installed()
    bench_startup.main()
    bench_fanout.main()
    bench_split.main()
    bench_content.main()
    bench_faq.main()
    bench_inbound.main()
    bench_tickets.main([])
    bench_history.main([])
    bench_postgres.main([])
    bench_pg_history.main([])
    bench_pg_tickets.main([])
