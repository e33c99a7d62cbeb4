# No hidden connection cap: without max_connections a backend's calls never queue behind each other, and running out of
# file descriptors fails the calls that find none with connect_failed, at once, while conflux goes on serving.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /slow/{id}
    body: '{"id": "{id}"}'
    delay: 1s
  - path: /fast
    body: '{"ok": true}'
EOF
my $m = $mock->port;

subtest '300 concurrent clients of a two-call route on a 1s upstream finish in about one delay' => sub {
    my $gw = spawn_conflux(<<"EOF");
threads: 2
backends:
  svc:
    url: http://127.0.0.1:$m
    timeout: 5s
routes:
  - path: /two
    calls:
      - { name: a, backend: svc, path: /slow/a, required: true }
      - { name: b, backend: svc, path: /slow/b, required: true }
EOF
    # with the former default cap (256 per process, 128 per thread) the 600 calls would take three rounds of the delay
    my ($res, $wall) = http_parallel(300, $gw->url('/two'));
    is(scalar(@$res), 300, '300 answers');
    is(scalar(grep { $_->{status} == 200 } @$res), 300, 'every one 200');
    my ($slowest) = sort { $b <=> $a } map { $_->{elapsed} } @$res;
    cmp_ok($slowest, '<', 1.8, "the slowest answer took ${slowest}s: one upstream delay (1s), not two or three");
    is($mock->stub_count('GET /slow/{id}'), 600, 'the mock got all 600 calls');
};

subtest 'out of file descriptors: calls fail with connect_failed at once, and conflux keeps serving' => sub {
    my $admin = empty_port();
    # the hard limit too: conflux raises its soft limit to the hard one at start
    my $gw = spawn_conflux(<<"EOF", wrap => ['sh', '-c', 'ulimit -n 64 && exec "$@"', 'sh']);
threads: 1
admin: 127.0.0.1:$admin
backends:
  svc:
    url: http://127.0.0.1:$m
    timeout: 5s
routes:
  - path: /fan
    calls:
      - { name: a, backend: svc, path: /slow/a }
      - { name: b, backend: svc, path: /slow/b }
      - { name: c, backend: svc, path: /slow/c }
      - { name: d, backend: svc, path: /slow/d }
EOF
    like($gw->log_text, qr/open-file limit 64\b/, 'conflux runs with an open-file limit of 64');
    $mock->reset;
    # 14 clients (all accepted: the client cap is 32), whose 56 calls want more descriptors than are left
    my ($res, $wall) = http_parallel(14, $gw->url('/fan'));
    is(scalar(grep { $_->{status} == 200 } @$res), 14, 'every client gets its answer (failed calls are optional)');
    cmp_ok($wall, '<', 2.5, "the whole batch took ${wall}s: one upstream delay; no call waited for a descriptor");
    my $failed = metric($admin, 'conflux_upstream_results_total{backend="svc",result="connect_failed"}');
    my $ok = metric($admin, 'conflux_upstream_results_total{backend="svc",result="ok"}');
    cmp_ok($failed, '>', 0, "calls that found no descriptor: $failed, counted as connect_failed");
    cmp_ok($ok, '>', 0, "calls that found one: $ok");
    is($failed + $ok, 56, 'nothing else');
    is($mock->stub_count('GET /slow/{id}'), $ok, 'a failed call sent nothing');
    my $r = http_get($gw->url('/fan'));
    is($r->{status}, 200, 'the next request is served');
    like($r->{headers}{'server-timing'} // '', qr/a;dur=[\d.]+;desc="ok"/, 'and its calls succeed again')
        or diag($r->{headers}{'server-timing'});
};

done_testing;
