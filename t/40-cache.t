# The local cache (docs/http.md, "Caching"): hits and expiry, Cache-Control, credential isolation, coalescing, stale
# serving, eviction by bytes, and the Cache-Status / Server-Timing reporting.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;
use Time::HiRes qw(time sleep);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /users/{id}
    body: '{"id": "{id}", "name": "user {id}"}'
  - path: /nostore/{id}
    headers: { Cache-Control: no-store }
    body: '{"id": "{id}"}'
  - path: /private/{id}
    headers: { Cache-Control: "private, max-age=60" }
    body: '{"id": "{id}"}'
  - path: /short/{id}
    headers: { Cache-Control: "public, max-age=1" }
    body: '{"id": "{id}"}'
  - path: /me
    body: '{"me": true}'
  - path: /slow/{id}
    body: '{"slow": "{id}"}'
    delay: 500ms
  - path: /refresh/{id}
    body: '{"refresh": "{id}"}'
    delay: 400ms
  - path: /flaky/{id}
    body: '{"flaky": "{id}"}'
    sequence: [200, 503]
  - path: /err/{id}
    status: 500
    body: '{"error": "x"}'
  - path: /notjson/{id}
    body: 'not json'
EOF
my $m = $mock->port;

# a second mock that the SIE test stops, to see the upstream "down"
my $mock2 = spawn_mock(<<'EOF');
stubs:
  - path: /down/{id}
    body: '{"down": "{id}"}'
EOF
my $m2 = $mock2->port;

my $gw = spawn_conflux(<<"EOF");
backends:
  svc:
    url: http://127.0.0.1:$m
    timeout: 2s
  other:
    url: http://127.0.0.1:$m2
    timeout: 300ms
    connect_timeout: 100ms
routes:
  - path: /p/{id}
    calls:
      - { name: profile, backend: svc, path: "/users/{id}", cache: 1s }
      - { name: live, backend: svc, path: /me }
  - path: /two/{id}
    calls:
      - { name: a, backend: svc, path: "/users/{id}", cache: 30s }
      - { name: b, backend: svc, path: "/users/b{id}", cache: { ttl: 30s } }
  - path: /cc/{kind}/{id}
    calls:
      - { name: x, backend: svc, path: "/{kind}/{id}", cache: 30s }
  - path: /auth/{id}
    forward_headers: [Authorization, Cookie]
    calls:
      - { name: who, backend: svc, path: "/users/{id}", cache: 30s }
  - path: /slow/{id}
    calls:
      - { name: s, backend: svc, path: "/slow/{id}", cache: 30s }
  - path: /swr/{id}
    calls:
      - { name: r, backend: svc, path: "/refresh/{id}", cache: { ttl: 1s, stale_while_revalidate: 30s } }
  - path: /sie/{id}
    calls:
      - { name: f, backend: svc, path: "/flaky/{id}", cache: { ttl: 1s, stale_if_error: 30s } }
  - path: /down/{id}
    deadline: 2s
    calls:
      - { name: d, backend: other, path: "/down/{id}", cache: { ttl: 1s, stale_if_error: 30s }, required: true }
EOF

sub stub_count { $mock->stub_count(@_) }

# Each `sleep 1.1` below lets a 1 s ttl pass: the entry was stored before the sleep began, so it is past its ttl at the
# end of it. The time passing is what those checks are about, not a wait for something to happen.

subtest 'hit, then expiry after the ttl' => sub {
    $mock->reset;
    my $r = http_get($gw->url('/p/1'));
    is($r->{status}, 200, 'first: 200');
    my $d = decode_json_ok($r->{body});
    is($d->{profile}{id}, '1', 'first: body from upstream');
    like($r->{headers}{'cache-status'}, qr/^conflux; fwd=miss; fwd-status=200; stored; ttl=\d+; detail="profile"$/,
        'first: Cache-Status says miss, stored (one member: only the cached call)');
    like($r->{headers}{'server-timing'}, qr/profile;dur=[\d.]+;desc="miss", live;dur=[\d.]+;desc="ok"/, 'first: Server-Timing miss');

    $r = http_get($gw->url('/p/1'));
    is($r->{status}, 200, 'second: 200');
    is(decode_json_ok($r->{body})->{profile}{name}, 'user 1', 'second: same body');
    like($r->{headers}{'cache-status'}, qr/^conflux; hit; ttl=\d+; detail="profile"$/, 'second: hit');
    like($r->{headers}{'server-timing'}, qr/profile;dur=[\d.]+;desc="hit"/, 'second: Server-Timing hit');
    is(stub_count('GET /users/{id}'), 1, 'one upstream request for two answers');
    is(stub_count('GET /me'), 2, 'the uncached call went upstream both times');

    sleep 1.1; # the 1 s ttl passes
    $r = http_get($gw->url('/p/1'));
    like($r->{headers}{'cache-status'}, qr/fwd=miss/, 'after the ttl: a miss again');
    is(stub_count('GET /users/{id}'), 2, 'and a second upstream request');
};

subtest 'two cached calls: one Cache-Status member each, in config order' => sub {
    $mock->reset;
    http_get($gw->url('/two/9'));
    my $r = http_get($gw->url('/two/9'));
    like($r->{headers}{'cache-status'}, qr/^conflux; hit; ttl=\d+; detail="a", conflux; hit; ttl=\d+; detail="b"$/, 'both hits');
    is(stub_count('GET /users/{id}'), 2, 'two upstream requests in all (one per call)');
};

subtest 'Cache-Control from upstream' => sub {
    $mock->reset;
    for my $kind (qw(nostore private)) {
        http_get($gw->url("/cc/$kind/1")) for 1 .. 3;
        is(stub_count("GET /$kind/{id}"), 3, "$kind: never stored, every request goes upstream");
        my $r = http_get($gw->url("/cc/$kind/1"));
        unlike($r->{headers}{'cache-status'} // '', qr/stored|hit/, "$kind: Cache-Status neither stored nor hit");
    }
    http_get($gw->url('/cc/short/1'));
    my $r = http_get($gw->url('/cc/short/1'));
    like($r->{headers}{'cache-status'}, qr/hit/, 'max-age=1: stored');
    sleep 1.1; # max-age=1 passes
    $r = http_get($gw->url('/cc/short/1'));
    like($r->{headers}{'cache-status'}, qr/fwd=miss/, 'max-age=1 shortened the 30s ttl');
    is(stub_count('GET /short/{id}'), 2, 'two upstream requests');

    http_get($gw->url('/cc/err/1')) for 1 .. 2;
    is(stub_count('GET /err/{id}'), 2, 'a 500 is not stored');
    http_get($gw->url('/cc/notjson/1')) for 1 .. 2;
    is(stub_count('GET /notjson/{id}'), 2, 'a body that is not JSON is not stored');
};

subtest 'Authorization and Cookie isolate entries' => sub {
    $mock->reset;
    my $a = http_request('GET', $gw->url('/auth/1'), { Authorization => 'Bearer alice' });
    like($a->{headers}{'cache-status'}, qr/fwd=miss/, 'alice: miss');
    my $b = http_request('GET', $gw->url('/auth/1'), { Authorization => 'Bearer bob' });
    like($b->{headers}{'cache-status'}, qr/fwd=miss/, 'bob: a miss, not alice\'s entry');
    my $n = http_get($gw->url('/auth/1'));
    like($n->{headers}{'cache-status'}, qr/fwd=miss/, 'no credentials: a miss too');
    my $c = http_request('GET', $gw->url('/auth/1'), { Authorization => 'Bearer alice', Cookie => 's=1' });
    like($c->{headers}{'cache-status'}, qr/fwd=miss/, 'alice with a cookie: a miss');
    $a = http_request('GET', $gw->url('/auth/1'), { Authorization => 'Bearer alice' });
    like($a->{headers}{'cache-status'}, qr/hit/, 'alice again: hit');
    is(stub_count('GET /users/{id}'), 4, 'four distinct users, four upstream requests');
    my @auth = map { $_->{headers}{authorization} // '-' } @{ $mock->journal };
    is_deeply([sort @auth], [sort('Bearer alice', 'Bearer bob', '-', 'Bearer alice')], 'upstream saw each credential');
};

subtest '100 concurrent identical misses: one upstream request' => sub {
    $mock->reset;
    my ($res, $wall) = http_parallel(100, $gw->url('/slow/1'));
    is(scalar(@$res), 100, '100 answers');
    is(scalar(grep { $_->{status} == 200 } @$res), 100, 'all 200');
    is(stub_count('GET /slow/{id}'), 1, 'the mock saw exactly one request');
    cmp_ok($wall, '<', 3, "in ${\ sprintf '%.2f', $wall}s (the upstream takes 0.5s)");
    my $r = http_get($gw->url('/slow/1'));
    like($r->{headers}{'cache-status'}, qr/hit/, 'then a hit');
};

subtest 'a coalesced answer says collapsed' => sub {
    $mock->reset;
    my $first = background(sub { http_get($gw->url('/slow/2'))->{status} });
    # the first request is at the 500 ms upstream once the mock has it: the second joins its flight
    ok(wait_until(sub { @{ $mock->journal('/slow/2') } == 1 }, 5), 'the first request is at the upstream');
    my $r = http_get($gw->url('/slow/2'));
    is($first->wait, 200, 'the first: 200');
    like($r->{headers}{'cache-status'}, qr/^conflux; fwd=miss; fwd-status=200; collapsed; detail="s"$/, 'collapsed');
    like($r->{headers}{'server-timing'}, qr/s;dur=[\d.]+;desc="coalesced"/, 'Server-Timing coalesced');
    is(stub_count('GET /slow/{id}'), 1, 'one upstream request');
};

subtest 'stale_while_revalidate: stale at once, exactly one refresh' => sub {
    $mock->reset;
    my $r = http_get($gw->url('/swr/1'));
    like($r->{headers}{'cache-status'}, qr/stored/, 'primed');
    sleep 1.1; # the 1 s ttl passes: the entry is stale
    my $last;
    for (1 .. 5) {
        $r = http_get($gw->url('/swr/1'));
        $last = time;
        like($r->{headers}{'cache-status'}, qr/^conflux; hit; fwd=stale; ttl=-\d+; detail="r"$/, 'stale hit');
        like($r->{headers}{'server-timing'}, qr/r;dur=[\d.]+;desc="stale"/, 'Server-Timing stale');
        is(decode_json_ok($r->{body})->{r}{refresh}, '1', 'the stale body');
    }
    my $j;
    ok(wait_until(sub { $j = $mock->journal('/refresh/1'); @$j == 2 && defined $j->[1]{answered_at} }, 5),
       'the refresh went upstream and was answered');
    # the mock's clock and this one are the same: the answers did not wait for the 400 ms refresh, whatever the speed
    cmp_ok($last, '<', $j->[1]{answered_at} // 0, 'all five stale answers came before the upstream answered the refresh');
    ok(wait_until(sub { http_get($gw->url('/swr/1'))->{headers}{'cache-status'} =~ /^conflux; hit; ttl=\d+/ }, 5),
       'refreshed: a fresh hit');
    is(stub_count('GET /refresh/{id}'), 2, 'exactly one background refresh for the stale answers');
};

subtest 'stale_if_error: a failed refresh is answered from the stale entry' => sub {
    $mock->reset;
    my $r = http_get($gw->url('/sie/1'));
    is(decode_json_ok($r->{body})->{f}{flaky}, '1', 'primed with the 200');
    sleep 1.1; # the 1 s ttl passes
    $r = http_get($gw->url('/sie/1'));
    is($r->{status}, 200, 'refresh got 503: still 200');
    is(decode_json_ok($r->{body})->{f}{flaky}, '1', 'the stale body');
    like($r->{headers}{'cache-status'}, qr/^conflux; hit; fwd=stale; fwd-status=503; ttl=-\d+; detail="f"$/, 'Cache-Status');
    is($r->{headers}{'conflux-complete'}, 'true', 'complete');
    is(stub_count('GET /flaky/{id}'), 2, 'the refresh did go upstream');
};

subtest 'stale_if_error: upstream down' => sub {
    my $r = http_get($gw->url('/down/1'));
    is(decode_json_ok($r->{body})->{d}{down}, '1', 'primed');
    $mock2->stop;
    sleep 1.1; # the 1 s ttl passes
    $r = http_get($gw->url('/down/1'));
    is($r->{status}, 200, 'the required call is answered stale: 200');
    is(decode_json_ok($r->{body})->{d}{down}, '1', 'the stale body');
    like($r->{headers}{'cache-status'}, qr/fwd=stale/, 'Cache-Status fwd=stale');
    $r = http_get($gw->url('/down/2'));
    is($r->{status}, 502, 'a key never cached: the failure (502)');
};

# a tiny cache: entries of ~1KiB evict each other by bytes
my $pad = 'x' x 900;
my $mock3 = spawn_mock(<<"EOF");
stubs:
  - path: /big/{id}
    body: '{"id": "{id}", "pad": "$pad"}'
EOF
my $gw2 = spawn_conflux(<<"EOF");
cache:
  memory: 4KiB
backends:
  svc: { url: "http://127.0.0.1:${\ $mock3->port}" }
routes:
  - path: /big/{id}
    calls:
      - { name: b, backend: svc, path: "/big/{id}", cache: 30s }
EOF

subtest 'eviction by bytes' => sub {
    http_get($gw2->url("/big/$_")) for 1 .. 6;
    my $r = http_get($gw2->url('/big/6'));
    like($r->{headers}{'cache-status'}, qr/hit/, 'the newest entry is kept');
    $r = http_get($gw2->url('/big/1'));
    like($r->{headers}{'cache-status'}, qr/fwd=miss/, 'the oldest was evicted (6 KiB of bodies in 4 KiB)');
    is($mock3->stub_count('GET /big/{id}'), 7, 'seven upstream requests');
};

done_testing();
