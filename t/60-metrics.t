# Admin endpoints: /metrics counters move by exactly what happened, histograms are well-formed, /config shows the
# file's hash and load time, /healthz answers, unknown admin paths get a JSON 404.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Digest::SHA qw(sha256_hex);
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(time);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /users/{id}
    body: '{"id": "{id}"}'
  - path: /slow
    body: '{"slow": true}'
    delay: 2s
  - path: /boom
    status: 500
    body: '{"error": "boom"}'
  - path: /missing
    status: 404
    body: '{"error": "nope"}'
EOF
my $m     = $mock->port;
my $admin = empty_port();
my $yaml  = <<"EOF";
admin: 127.0.0.1:$admin
backends:
  svc:
    url: http://127.0.0.1:$m
    timeout: 1s
  down:
    url: http://127.0.0.1:1
    connect_timeout: 200ms
routes:
  - path: /u/{id}
    calls:
      - { name: profile, backend: svc, path: "/users/{id}" }
  - path: /t
    calls:
      - { name: fast, backend: svc, path: /users/1 }
      - { name: slow, backend: svc, path: /slow, timeout: 200ms }
  - path: /boom
    calls:
      - { name: main, backend: svc, path: /boom }
      - { name: gone, backend: svc, path: /missing }
      - { name: refused, backend: down, path: /x }
  - path: /p/{rest*}
    proxy: svc
  - path: /c/{id}
    calls:
      - { name: cached, backend: svc, path: "/users/{id}", cache: 30s }
EOF
my $gw  = spawn_conflux($yaml);
my $adm = "http://127.0.0.1:$admin";

# Scrapes /metrics: checks every line's syntax, returns {'name{labels}' => value} and the raw text.
sub scrape {
    my $r = http_get("$adm/metrics");
    is $r->{status}, 200, 'GET /metrics: 200' or return {};
    like $r->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4}, 'Prometheus text content type';
    my (%v, @bad);
    for my $line (split /\n/, $r->{body}) {
        next if $line =~ /^# (?:HELP|TYPE) conflux_\w+ /;
        if ($line =~ /^(conflux_\w+(?:\{(?:\w+="(?:[^"\\]|\\.)*",?)*\})?) (\S+)$/) {
            $v{$1} = $2;
        } else {
            push @bad, $line;
        }
    }
    is_deeply \@bad, [], 'every line is a comment or a sample' or diag join "\n", @bad;
    return wantarray ? (\%v, $r->{body}) : \%v;
}

# waits until the sample $key has moved by $want since $before (a SIGHUP is handled on the next loop turn); then scrapes
sub wait_delta {
    my ($before, $key, $want) = @_;
    wait_until(sub { metric($admin, $key) - ($before->{$key} // 0) >= $want }, 5);
    return scrape();
}

subtest 'healthz and unknown admin paths' => sub {
    my $r = http_get("$adm/healthz");
    is $r->{status}, 200, '/healthz 200';
    is $r->{body}, "ok\n", '/healthz body';
    $r = http_get("$adm/nope");
    is $r->{status}, 404, 'unknown admin path: 404';
    my $doc = decode_json_ok($r->{body}, '404 body is JSON');
    is $doc->{error}, 'not_found', 'error code' if $doc;
    is http_get("$adm/metrics?x=1")->{status}, 200, 'a query string does not change the endpoint';
};

subtest 'request counters move by exactly what happened' => sub {
    my $before = scrape();
    is http_get($gw->url("/u/$_"))->{status}, 200, "GET /u/$_" for 1 .. 3;
    is http_get($gw->url('/nope'))->{status}, 404, 'unrouted: 404' for 1 .. 2;
    is http_request('POST', $gw->url('/u/1'))->{status}, 405, 'wrong method: 405';
    my $t = http_get($gw->url('/t'));
    is $t->{status}, 200, '/t answers (slow is optional)';
    is http_get($gw->url('/boom'))->{status}, 200, '/boom answers with three failed optional calls';
    is http_get($gw->url('/p/users/9'))->{status}, 200, 'proxy answer';
    is http_get($gw->url('/p/missing'))->{status}, 404, 'proxied 404';
    my $after = scrape();

    is delta($before, $after, 'conflux_requests_total{route="/u/{id}",status="200"}'), 3, 'route /u/{id}: 3 x 200';
    is delta($before, $after, 'conflux_requests_total{route="none",status="404"}'), 2, 'unrouted 404s under route="none"';
    is delta($before, $after, 'conflux_requests_total{route="/u/{id}",status="405"}'), 1, 'a 405 under the route its path matched';
    is delta($before, $after, 'conflux_requests_total{route="none",status="405"}'), 0, 'not under route="none"';
    is delta($before, $after, 'conflux_requests_total{route="/t",status="200"}'), 1, '/t: one 200';
    is delta($before, $after, 'conflux_requests_total{route="/p/{rest*}",status="200"}'), 1, 'proxy 200';
    is delta($before, $after, 'conflux_requests_total{route="/p/{rest*}",status="404"}'), 1, 'proxy 404';
    is delta($before, $after, 'conflux_request_duration_seconds_count{route="/u/{id}"}'), 4, 'route latency count (the 405 too)';
    is delta($before, $after, 'conflux_request_duration_seconds_count{route="none"}'), 2, 'unrouted latency count';
    is delta($before, $after, 'conflux_call_duration_seconds_count{route="/u/{id}",call="profile"}'), 3, 'call latency count';
    is delta($before, $after, 'conflux_call_duration_seconds_count{route="/p/{rest*}",call="svc"}'), 2,
        'a proxy route has one call named after its backend';

    # upstream results: 3 profile + /t fast + proxy 200 = 5 ok; timeout, status_5xx, status_4xx (call and proxy),
    # connect_failed each as its own result
    is delta($before, $after, 'conflux_upstream_results_total{backend="svc",result="ok"}'), 5, 'ok results';
    is delta($before, $after, 'conflux_upstream_results_total{backend="svc",result="timeout"}'), 1, 'the timeout, under its reason';
    is delta($before, $after, 'conflux_upstream_results_total{backend="svc",result="status_5xx"}'), 1, 'status_500 folded to status_5xx';
    is delta($before, $after, 'conflux_upstream_results_total{backend="svc",result="status_4xx"}'), 2,
        'status_404 of a call and a proxied 404 fold to status_4xx';
    is delta($before, $after, 'conflux_upstream_results_total{backend="down",result="connect_failed"}'), 1, 'connect_failed';
    ok !grep({ /result="status_\d\d\d"/ } keys %$after), 'no per-code result labels';
    # a request leaves the gauge when h2o disposes of it, just after its answer is written: the client may read the
    # answer first, so give the last one a moment to settle before calling the process at rest
    ok wait_until(sub { metric($admin, 'conflux_inflight_requests') == 0 }, 2), 'nothing in flight at rest';

    # the 200ms timeout lands in the (0.1, 0.25] bucket
    my $k = 'conflux_call_duration_seconds_bucket{route="/t",call="slow",le=';
    is delta($before, $after, $k . '"0.1"}'), 0, 'timed-out call: not under 100ms';
    is delta($before, $after, $k . '"0.25"}'), 1, 'timed-out call: under 250ms';
};

subtest 'histograms: cumulative buckets, _count = +Inf, sums consistent' => sub {
    my ($v, $text) = scrape();
    my %series;
    for my $key (keys %$v) {
        next unless $key =~ /^(conflux_\w+_seconds)_bucket\{(.*),le="([^"]+)"\}$/;
        push @{ $series{"$1\{$2\}"} }, [$3 eq '+Inf' ? 9**9**9 : $3, $v->{$key}];
    }
    ok scalar(keys %series) >= 6, 'several histogram series';
    for my $s (sort keys %series) {
        my @b = sort { $a->[0] <=> $b->[0] } @{ $series{$s} };
        is scalar(@b), 14, "$s: 13 buckets + Inf";
        my $mono = 1;
        $mono &&= $b[$_][1] >= $b[$_ - 1][1] for 1 .. $#b;
        ok $mono, "$s: buckets are cumulative";
        my ($name, $labels) = $s =~ /^(\w+)\{(.*)\}$/;
        is $v->{"${name}_count\{$labels\}"}, $b[-1][1], "$s: _count equals the +Inf bucket";
        my $sum = $v->{"${name}_sum\{$labels\}"};
        # every observation is above the bucket below its own: sum >= sum of lower bounds, <= sum of upper bounds
        my ($lo, $hi, $prev_n, $prev_le) = (0, 0, 0, 0);
        for my $bk (@b) {
            my $n = $bk->[1] - $prev_n;
            $lo += $n * $prev_le;
            $hi += $n * $bk->[0] if $n;
            ($prev_n, $prev_le) = ($bk->[1], $bk->[0]);
        }
        ok $sum >= $lo - 1e-9 && $sum <= $hi + 1e-9, "$s: _sum $sum within the buckets' bounds [$lo, $hi]";
    }
    like $text, qr/^# TYPE conflux_request_duration_seconds histogram$/m, 'histogram TYPE line';
    like $text, qr/^# TYPE conflux_requests_total counter$/m, 'counter TYPE line';
    my ($version) = run_cmd([bindir() . '/conflux', '--version'])->{out} =~ /^conflux (\S+)/;
    is $v->{"conflux_build_info{version=\"$version\",libh2o=\"2.2.5\"}"}, 1, "build_info carries version $version";
    ok exists $v->{conflux_access_log_dropped_total}, 'access-log drop counter present';
};

subtest 'heap bytes in use and held free by the allocator' => sub {
    my $v = scrape();
    my ($in_use, $free) = ($v->{'conflux_memory_heap_bytes{state="in_use"}'}, $v->{'conflux_memory_heap_bytes{state="free"}'});
    ok defined $in_use && defined $free, 'both states present' or return;
    if ($ENV{CONFLUX_SANITIZED}) {
        pass 'under ASan the heap is not glibc\'s: the values mean nothing';
        return;
    }
    my ($rss) = slurp('/proc/' . $gw->pid . '/status') =~ /^VmRSS:\s+(\d+) kB/m;
    cmp_ok $in_use, '>', 100_000, "in use: $in_use bytes (a running conflux holds more than 100 KB)";
    cmp_ok $in_use + $free, '<', $rss * 1024 * 2, "in use + free below twice the RSS ($rss KiB): they are the heap's, not made up";
};

subtest 'cache results by call and for the process' => sub {
    my $before = scrape();
    is http_get($gw->url('/c/5'))->{status}, 200, "GET /c/5 ($_)" for 1 .. 3;
    my $after = scrape();
    my $k = 'conflux_cache_requests_total{route="/c/{id}",call="cached",result=';
    is delta($before, $after, $k . '"miss"}'), 1, 'one miss for the call';
    is delta($before, $after, $k . '"hit"}'), 2, 'then two hits';
    is delta($before, $after, 'conflux_cache_results_total{result="miss"}'), 1, 'process-wide: one miss';
    is delta($before, $after, 'conflux_cache_results_total{result="hit"}'), 2, 'process-wide: two hits';
    ok $after->{conflux_cache_entries} >= 1, 'an entry is held';
    ok $after->{conflux_cache_bytes} > 0, 'bytes held';
};

subtest 'client going away is counted as 499' => sub {
    my $before = scrape();
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw->port) or die;
    print $s "GET /t HTTP/1.1\r\nHost: x\r\n\r\n";
    # it leaves while its slow call (200 ms timeout) is still running
    ok wait_until(sub { metric($admin, 'conflux_inflight_requests') == 1 }, 2), 'the request is in flight';
    close $s;
    my $after = wait_delta($before, 'conflux_requests_total{route="/t",status="499"}', 1);
    is delta($before, $after, 'conflux_requests_total{route="/t",status="499"}'), 1, 'one 499';
};

subtest '/config: hash and load time of the file; reloads counted' => sub {
    my $t0 = time;
    my $r = http_get("$adm/config");
    is $r->{status}, 200, 'GET /config: 200';
    like $r->{headers}{'content-type'}, qr{^application/json}, 'JSON';
    my $doc = decode_json_ok($r->{body}, '/config is JSON') or return;
    my $bytes = slurp($gw->{config});
    is $doc->{sha256}, sha256_hex($bytes), 'sha256 of the file bytes';
    is $doc->{path}, $gw->{config}, 'path';
    is $doc->{routes}, 5, 'routes';
    is $doc->{backends}, 2, 'backends';
    like $doc->{loaded_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'loaded_at is RFC 3339 UTC';
    is_deeply [sort keys %$doc], [qw(backends loaded_at path routes sha256)], 'nothing else (no secrets)';

    my $before = scrape();
    my $new    = $bytes . "  - path: /extra\n    proxy: svc\n";
    write_file($gw->{config}, $new);
    $gw->signal('HUP');
    my $after = wait_delta($before, 'conflux_config_reloads_total{result="ok"}', 1);
    is delta($before, $after, 'conflux_config_reloads_total{result="ok"}'), 1, 'good reload counted';
    is delta($before, $after, 'conflux_config_reloads_total{result="error"}'), 0, 'no error';
    $doc = decode_json_ok(http_get("$adm/config")->{body});
    is $doc->{sha256}, sha256_hex($new), 'hash of the new file';
    is $doc->{routes}, 6, 'six routes now';
    my $loaded = $doc->{loaded_at};
    ok $loaded ge strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(int $t0)), "loaded_at moved ($loaded)";

    write_file($gw->{config}, "routes: [\n");
    $gw->signal('HUP');
    my $after2 = wait_delta($after, 'conflux_config_reloads_total{result="error"}', 1);
    is delta($after, $after2, 'conflux_config_reloads_total{result="error"}'), 1, 'bad reload counted as error';
    is delta($after, $after2, 'conflux_config_reloads_total{result="ok"}'), 0, 'not as ok';
    $doc = decode_json_ok(http_get("$adm/config")->{body});
    is $doc->{sha256}, sha256_hex($new), '/config still shows the live config';
    is http_get($gw->url('/p/users/1'))->{status}, 200, 'and it still serves';
};

is $gw->stop, 0, 'conflux exits 0';

done_testing;
