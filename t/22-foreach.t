# foreach: and batch: one upstream request per element (or per batch) of an earlier call's array, at most `concurrency`
# in flight, slots refilled at once, element order kept, failures per element; and what -t refuses.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;
use Time::HiRes qw(time);

my $conflux = bindir() . '/conflux';
plan skip_all => "$conflux is not built" unless -x $conflux;

# Element sources are stubs; the elements' own stubs answer after a delay their path names.
my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /src/order
    body: '{"els": [{"d": "d300", "id": 1}, {"d": "d150", "id": 2}, {"d": "d10", "id": 3}]}'
  - path: /src/twelve
    body: '{"els": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}'
  - path: /src/waves
    body: '{"els": [{"d": "d400", "id": 1}, {"d": "d50", "id": 2}, {"d": "d50", "id": 3}, {"d": "d50", "id": 4}, {"d": "d50", "id": 5}, {"d": "d50", "id": 6}, {"d": "d50", "id": 7}]}'
  - path: /src/mixed
    body: '{"els": [0, 0.92, 7, "x y", "a/b", {"id": 5}, null, true, -3], "objs": [{"id": 10}, {"id": "p q"}, {"name": "no id"}, {"id": {"deep": 1}}, 42]}'
  - path: /src/some-fail
    body: '{"els": [{"p": "ok", "id": 1}, {"p": "fail", "id": 2}, {"p": "ok", "id": 3}]}'
  - path: /src/empty
    body: '{"els": [], "nothing": null, "str": "abc"}'
  - path: /src/five
    body: '{"els": [1, 2, 3, 4, 5], "bad": [1, 2, 3, "x", 5]}'
  - path: /src/slow5
    body: '{"els": [1, 2, 3, 4, 5]}'
  - path: /d300/{id}
    body: '{"id": {id}, "secret": "s"}'
    delay: 300ms
  - path: /d150/{id}
    body: '{"id": {id}, "secret": "s"}'
    delay: 150ms
  - path: /d10/{id}
    body: '{"id": {id}, "secret": "s"}'
    delay: 10ms
  - path: /d400/{id}
    body: '{"id": {id}}'
    delay: 400ms
  - path: /d50/{id}
    body: '{"id": {id}}'
    delay: 50ms
  - path: /c100/{id}
    body: '{"id": {id}}'
    delay: 100ms
  - path: /slow/{id}
    body: '{"id": {id}}'
    delay: 200ms
  - path: /hang/{id}
    body: '{"id": {id}}'
    delay: 5s
  - path: /echo/{v}
    body: '{"v": "{v}"}'
  - path: /ok/{id}
    body: '{"id": {id}}'
  - path: /fail/{id}
    status: 500
    body: '{"error": "boom"}'
  - path: /b/{ids}
    body: '[{ids}]'
  - path: /one/{ids}
    body: '[1]'
  - path: /bq
    body: '["a", "b"]'
  - path: /per-element
    method: POST
    body: '{"ok": true}'
EOF
my $m = $mock->port;
my $admin = empty_port();
my $log = tmpdir() . '/foreach-access.log';

my $gw = spawn_conflux(<<"EOF");
admin: 127.0.0.1:$admin
access_log: $log
backends:
  svc:
    url: http://127.0.0.1:$m
    timeout: 2s
routes:
  - path: /order
    deadline: 3s
    calls:
      - { name: src, backend: svc, path: /src/order }
      - { name: els, backend: svc, path: "/{item.d}/{item.id}", foreach: src.els, deny: [secret] }
  - path: /conc
    deadline: 5s
    calls:
      - { name: src, backend: svc, path: /src/twelve }
      - { name: els, backend: svc, path: "/c100/{item}", foreach: src.els, concurrency: 3 }
  - path: /waves
    deadline: 5s
    calls:
      - { name: src, backend: svc, path: /src/waves }
      - { name: els, backend: svc, path: "/{item.d}/{item.id}", foreach: src.els, concurrency: 2 }
  - path: /toolarge
    calls:
      - { name: src, backend: svc, path: /src/twelve }
      - { name: els, backend: svc, path: "/ok/{item}", foreach: src.els, max_items: 11 }
  - path: /mixed
    calls:
      - { name: src, backend: svc, path: /src/mixed }
      - { name: els, backend: svc, path: "/echo/{item}", foreach: src.els }
      - { name: objs, backend: svc, path: "/echo/{item.id}", foreach: src.objs }
  - path: /somefail
    calls:
      - { name: src, backend: svc, path: /src/some-fail }
      - { name: nulls, backend: svc, path: "/{item.p}/{item.id}", foreach: src.els }
      - { name: omitted, backend: svc, path: "/{item.p}/{item.id}", foreach: src.els, on_error: omit }
  - path: /required
    calls:
      - { name: src, backend: svc, path: /src/some-fail }
      - { name: els, backend: svc, path: "/{item.p}/{item.id}", foreach: src.els, required: true }
  - path: /empty
    calls:
      - { name: src, backend: svc, path: /src/empty }
      - { name: empty, backend: svc, path: "/ok/{item}", foreach: src.els }
      - { name: absent, backend: svc, path: "/ok/{item}", foreach: src.nope }
      - { name: isnull, backend: svc, path: "/ok/{item}", foreach: src.nothing }
      - { name: notarray, backend: svc, path: "/ok/{item}", foreach: src.str }
  - path: /batch
    calls:
      - { name: src, backend: svc, path: /src/five }
      - { name: all, backend: svc, path: "/b/{items}", foreach: src.els, batch: 2 }
      - { name: bad, backend: svc, path: "/b/{items}", foreach: src.bad, batch: 2 }
      - { name: short, backend: svc, path: "/one/{items}", foreach: src.els, batch: 2 }
  - path: /batchq
    calls:
      - { name: src, backend: svc, path: /src/mixed }
      - { name: q, backend: svc, path: "/bq?ids={items}", foreach: src.els, batch: 2 }
  - path: /cached
    calls:
      - { name: src, backend: svc, path: /src/twelve }
      - { name: els, backend: svc, path: "/ok/{item}", foreach: src.els, concurrency: 2, cache: 30s }
  - path: /deadline
    deadline: 500ms
    calls:
      - { name: src, backend: svc, path: /src/slow5 }
      - { name: els, backend: svc, path: "/slow/{item}", foreach: src.els, concurrency: 1 }
  - path: /whole
    methods: [POST]
    calls:
      - { name: src, backend: svc, path: /src/order }
      - { name: each, backend: svc, path: "/d10/{item.id}", foreach: src.els }
      - { name: all, backend: svc, path: /per-element, method: POST, body: { got: "{each}", n: "{src.els}" } }
  - path: /post-each
    methods: [POST]
    calls:
      - { name: src, backend: svc, path: /src/order }
      - name: each
        backend: svc
        path: /per-element
        method: POST
        foreach: src.els
        body: { id: "{item.id}", whole: "{item}", note: "n {item.id}" }
  - path: /gone
    calls:
      - { name: src, backend: svc, path: /src/slow5 }
      - { name: els, backend: svc, path: "/hang/{item}", foreach: src.els, concurrency: 2 }
EOF

sub get_json {
    my ($path) = @_;
    my $r = http_get($gw->url($path));
    my $doc = eval { JSON::PP->new->decode($r->{body}) };
    return ($r, $doc);
}

# the part of Server-Timing about one call: "els;dur=12.3;desc=\"ok 3/3\""
sub timing_of {
    my ($r, $name) = @_;
    my ($t) = ($r->{headers}{'server-timing'} // '') =~ /(?:^|, )(\Q$name\E;dur=[^,]*)/;
    return $t // '';
}

sub timing_ms {
    my ($r, $name) = @_;
    my ($ms) = timing_of($r, $name) =~ /dur=([\d.]+)/;
    return $ms // -1;
}

subtest 'element order is kept when elements finish out of order' => sub {
    $mock->reset;
    my ($r, $doc) = get_json('/order');
    is($r->{status}, 200, 'status 200');
    is_deeply($doc->{els}, [{ id => 1 }, { id => 2 }, { id => 3 }], 'results in element order, each shaped (deny)');
    my @j = grep { $_->{path} =~ m{^/d\d+/} } @{ $mock->journal };
    is(scalar @j, 3, 'three element requests');
    my @by_end = map { $_->{path} } sort { $a->{answered_at} <=> $b->{answered_at} } @j;
    is_deeply(\@by_end, ['/d10/3', '/d150/2', '/d300/1'], 'the upstream answered them in the opposite order');
    like(timing_of($r, 'els'), qr/desc="ok 3\/3"/, 'Server-Timing: ok 3/3');
    is($r->{headers}{'conflux-complete'}, 'true', 'complete');
};

subtest 'concurrency is never exceeded, and is reached' => sub {
    $mock->reset;
    my ($r, $doc) = get_json('/conc');
    is($r->{status}, 200, 'status 200');
    is_deeply($doc->{els}, [map { { id => $_ } } 1 .. 12], 'twelve results in order');
    my $stats = $mock->stats;
    is($stats->{stubs}{'GET /c100/{id}'}, 12, 'twelve element requests');
    is($stats->{max_inflight}, 3, 'the mock saw exactly 3 in flight at most (concurrency: 3)');
    # 12 elements of 100 ms, 3 at a time: 4 rounds
    my $ms = timing_ms($r, 'els');
    cmp_ok($ms, '>=', 390, "the call took at least 4 rounds of 100 ms ($ms ms)");
    cmp_ok($ms, '<', 1000, 'and not much more');
};

subtest 'a free slot takes the next element at once: no waves' => sub {
    $mock->reset;
    my ($r, $doc) = get_json('/waves');
    is($r->{status}, 200, 'status 200');
    is_deeply($doc->{els}, [map { { id => $_ } } 1 .. 7], 'seven results in order');
    is($mock->stats->{max_inflight}, 2, 'two in flight at most');
    # one slot holds the 400 ms element while the other runs the six 50 ms ones one after another (300 ms): 400 ms in
    # all. In waves of two it would be 400 + 3 x 50 = 550 ms.
    my $ms = timing_ms($r, 'els');
    cmp_ok($ms, '>=', 395, "at least the slow element ($ms ms)");
    cmp_ok($ms, '<', 520, 'well under the 550 ms that waves would take');
};

subtest 'more elements than max_items: too_large, and no element request' => sub {
    $mock->reset;
    my ($r, $doc) = get_json('/toolarge');
    is($r->{status}, 200, '200 (optional call)');
    ok(exists $doc->{els} && !defined $doc->{els}, 'the call is null');
    like(timing_of($r, 'els'), qr/desc="too_large 0\/12"/, 'Server-Timing: too_large 0/12');
    like($r->{headers}{'proxy-status'} // '', qr/error=http_response_body_size; details="els"/, 'Proxy-Status');
    is($mock->stats->{stubs}{'GET /ok/{id}'}, 0, 'no element request went out');
};

subtest 'element values: numbers in shortest form, encoding, refusals, objects' => sub {
    $mock->reset;
    my ($r, $doc) = get_json('/mixed');
    is($r->{status}, 200, 'status 200');
    is_deeply($doc->{els},
        [{ v => '0' }, { v => '0.92' }, { v => '7' }, { v => 'x%20y' }, undef, undef, undef, { v => 'true' }, { v => '-3' }],
        'a/b (bad_param), an object and null (missing_param) are null; the rest answered');
    is_deeply($doc->{objs}, [{ v => '10' }, { v => 'p%20q' }, undef, undef, undef],
        '{item.id}: an element without id, an object id, a number element: null');
    my %paths = map { $_->{path} => 1 } @{ $mock->journal };
    ok($paths{$_}, "requested $_") for qw(/echo/0 /echo/0.92 /echo/7 /echo/true /echo/-3 /echo/10);
    ok($paths{'/echo/x%20y'} && $paths{'/echo/p%20q'}, 'strings with a space reached the upstream encoded, as one segment');
    ok(!(grep { m{^/echo/a} } keys %paths), 'a/b was never sent');
    is(scalar(grep { m{^/echo/} } keys %paths), 8, 'eight element requests, none for the refused ones');
    like(timing_of($r, 'els'), qr/desc="ok 6\/9"/, 'Server-Timing: ok 6/9');
    like(timing_of($r, 'objs'), qr/desc="ok 2\/5"/, 'Server-Timing: ok 2/5');
    is($r->{headers}{'conflux-complete'}, 'false', 'not complete');
    like($r->{headers}{'proxy-status'} // '', qr/details="els"/, 'Proxy-Status names the call');
};

subtest 'a POST per element: {item} in the body, with its JSON type' => sub {
    $mock->reset;
    my $r = http_request('POST', $gw->url('/post-each'));
    my $doc = eval { JSON::PP->new->decode($r->{body}) };
    is($r->{status}, 200, 'status 200');
    is_deeply($doc->{each}, [{ ok => JSON::PP::true }, { ok => JSON::PP::true }, { ok => JSON::PP::true }], 'three answers');
    my @bodies = sort { $a->{id} <=> $b->{id} }
        map { JSON::PP->new->decode($_->{body}) } grep { $_->{method} eq 'POST' } @{ $mock->journal('/per-element') };
    is_deeply(\@bodies,
              [ { id => 1, whole => { d => 'd300', id => 1 }, note => 'n 1' },
                { id => 2, whole => { d => 'd150', id => 2 }, note => 'n 2' },
                { id => 3, whole => { d => 'd10', id => 3 }, note => 'n 3' } ],
              'each element\'s body: the id a number, the element an object, interpolated text');
};

subtest 'a foreach call\'s whole array may go in a body' => sub {
    $mock->reset;
    my $r = http_request('POST', $gw->url('/whole'));
    is($r->{status}, 200, 'status 200');
    my ($e) = grep { $_->{method} eq 'POST' } @{ $mock->journal('/per-element') };
    my $body = eval { JSON::PP->new->decode($e->{body} // '') };
    is_deeply($body->{got}, [map { { id => $_, secret => 's' } } 1 .. 3], 'the elements\' answers, in element order, as an array') or diag $e->{body};
    is(scalar @{ $body->{n} // [] }, 3, 'and a plain call\'s array');
};

subtest 'a failed element: null, or dropped with on_error: omit' => sub {
    $mock->reset;
    my $before = metrics($admin);
    my ($r, $doc) = get_json('/somefail');
    is($r->{status}, 200, 'status 200');
    is_deeply($doc->{nulls}, [{ id => 1 }, undef, { id => 3 }], 'null in its place');
    is_deeply($doc->{omitted}, [{ id => 1 }, { id => 3 }], 'dropped with omit');
    like(timing_of($r, 'nulls'), qr/desc="ok 2\/3"/, 'Server-Timing: ok 2/3');
    is($r->{headers}{'conflux-complete'}, 'false', 'not complete');
    like($r->{headers}{'proxy-status'} // '', qr/received-status=500; details="nulls"/, 'Proxy-Status: the element\'s status');
    my $after;
    wait_until(sub { $after = metrics($admin); delta($before, $after, 'conflux_call_elements_total{route="/somefail",call="nulls",result="failed"}') == 1 }, 5);
    is(delta($before, $after, 'conflux_call_elements_total{route="/somefail",call="nulls",result="ok"}'), 2, 'metrics: 2 ok');
    is(delta($before, $after, 'conflux_call_elements_total{route="/somefail",call="nulls",result="failed"}'), 1, 'metrics: 1 failed');
    is(delta($before, $after, 'conflux_call_elements_total{route="/somefail",call="omitted",result="ok"}'), 2, 'metrics: the other call');
    my $line;
    wait_until(sub { ($line) = grep { /"route":"\/somefail"/ } split /\n/, (-e $log ? slurp($log) : ''); $line }, 5);
    like($line // '', qr/"name":"nulls".*"elements":\{"ok":2,"total":3\}/, 'access log: elements ok/total');
};

subtest 'required: a failed element fails the request' => sub {
    $mock->reset;
    my ($r, $doc) = get_json('/required');
    is($r->{status}, 502, '502 (the element got a 500)');
    is_deeply($doc, { error => 'status_500', call => 'els', status => 500 }, 'the error body names the call');
};

subtest 'empty, absent and null arrays give []; a string is not an array' => sub {
    $mock->reset;
    my ($r, $doc) = get_json('/empty');
    is($r->{status}, 200, 'status 200');
    is_deeply($doc->{empty}, [], 'empty: []');
    is_deeply($doc->{absent}, [], 'absent: []');
    is_deeply($doc->{isnull}, [], 'null: []');
    ok(exists $doc->{notarray} && !defined $doc->{notarray}, 'a string: the call fails');
    like(timing_of($r, 'notarray'), qr/desc="not_an_array 0\/0"/, 'Server-Timing: not_an_array');
    like(timing_of($r, 'empty'), qr/desc="ok 0\/0"/, 'Server-Timing: ok 0/0');
    is($mock->stats->{stubs}{'GET /ok/{id}'}, 0, 'no element request');
};

subtest 'batch: split, concatenated in order; a failed batch gives nulls' => sub {
    $mock->reset;
    my ($r, $doc) = get_json('/batch');
    is($r->{status}, 200, 'status 200');
    is_deeply($doc->{all}, [1, 2, 3, 4, 5], '5 elements in batches of 2, concatenated');
    my @paths = sort map { $_->{path} } grep { $_->{path} =~ m{^/b/} } @{ $mock->journal };
    is_deeply(\@paths, ['/b/1,2', '/b/1,2', '/b/3,4', '/b/3,x', '/b/5', '/b/5'], 'three requests per call: 1,2 / 3,4 / 5');
    is_deeply($doc->{bad}, [1, 2, undef, undef, 5], 'a batch whose answer is not JSON: a null per element');
    is_deeply($doc->{short}, [undef, undef, undef, undef, 1], 'a batch answering fewer entries than asked: nulls');
    like(timing_of($r, 'all'), qr/desc="ok 5\/5";attempts=3/, 'Server-Timing: ok 5/5, 3 requests');
    like(timing_of($r, 'short'), qr/desc="ok 1\/5"/, 'Server-Timing: ok 1/5');
    like($r->{headers}{'proxy-status'} // '', qr/details="short"/, 'Proxy-Status for the short batches');
};

subtest 'batch: {items} in a query value, each value encoded' => sub {
    $mock->reset;
    my ($r, $doc) = get_json('/batchq');
    is($r->{status}, 200, 'status 200');
    my @q = map { $_->{query} } grep { $_->{path} eq '/bq' } @{ $mock->journal };
    is_deeply([sort @q], ['ids=-3', 'ids=0,0.92', 'ids=7,x%20y'],
        'values encoded and joined; the batches holding an object or null are not sent');
    is_deeply($doc->{q}, ['a', 'b', 'a', 'b', undef, undef, undef, undef, undef],
        'two batches answered; those not sent, and the last one (two entries for one element), null');
};

subtest 'elements go through the cache: a second request is answered from it' => sub {
    $mock->reset;
    my ($r, $doc) = get_json('/cached');
    is_deeply($doc->{els}, [map { { id => $_ } } 1 .. 12], 'first request: twelve results');
    is($mock->stats->{stubs}{'GET /ok/{id}'}, 12, 'twelve element requests');
    ($r, $doc) = get_json('/cached');
    is_deeply($doc->{els}, [map { { id => $_ } } 1 .. 12], 'second request: the same, in order');
    like(timing_of($r, 'els'), qr/desc="ok 12\/12"/, 'Server-Timing: ok 12/12');
    is($mock->stats->{stubs}{'GET /ok/{id}'}, 12, 'no more element requests: every element was a hit');
};

subtest 'the deadline cancels the elements still running and those not started' => sub {
    $mock->reset;
    my $t0 = time;
    my ($r, $doc) = get_json('/deadline');
    my $elapsed = time - $t0;
    is($r->{status}, 200, 'status 200');
    cmp_ok($elapsed, '<', 0.9, sprintf('answered at the deadline (%.3f s)', $elapsed));
    is_deeply($doc->{els}, [{ id => 1 }, { id => 2 }, undef, undef, undef], 'two answered, the rest null');
    like(timing_of($r, 'els'), qr/desc="ok 2\/5"/, 'Server-Timing: ok 2/5');
    like($r->{headers}{'proxy-status'} // '', qr/error=http_response_timeout; details="els"/, 'Proxy-Status: deadline');
    ok(wait_until(sub { $mock->stats->{aborted} == 1 }, 5), 'the element running at the deadline was cancelled upstream');
    is($mock->stats->{stubs}{'GET /slow/{id}'}, 3, 'elements 4 and 5 were never sent');
};

subtest 'a client that goes away cancels the elements' => sub {
    $mock->reset;
    my $r = run_cmd(['curl', '-s', '--max-time', '0.3', $gw->url('/gone')], timeout => 10);
    ok(wait_until(sub { $mock->stats->{stubs}{'GET /hang/{id}'} == 2 && $mock->stats->{aborted} == 2 }, 5),
        'the two elements in flight were cancelled');
    is($mock->stats->{inflight}, 0, 'nothing left in flight at the mock');
    is($mock->stats->{stubs}{'GET /hang/{id}'}, 2, 'no more were started');
};

# -t: what a foreach call may not do
my $dir = tmpdir();
my $n = 0;
sub refused {
    my ($name, $calls, $want) = @_;
    my $file = sprintf '%s/fe%02d.yaml', $dir, ++$n;
    open my $fh, '>', $file or die "$file: $!";
    print $fh "listen:\n  - port: 8080\nbackends:\n  svc:\n    url: http://127.0.0.1:9001\nroutes:\n  - path: /x\n$calls";
    close $fh;
    my $r = run_cmd([$conflux, '-t', '-c', $file], timeout => 10);
    is($r->{code}, 1, "$name: refused");
    like($r->{err}, $want, "$name: says why");
}

my $src = "    calls:\n      - { name: src, backend: svc, path: /src }\n";
refused('nested foreach', $src
    . "      - { name: a, backend: svc, path: '/a/{item}', foreach: src.ids }\n"
    . "      - { name: b, backend: svc, path: '/b/{item}', foreach: a }\n",
    qr/calls\[2\]\.foreach: "a" is itself a foreach call: nested foreach is not supported/);
refused('{items} without batch', $src . "      - { name: a, backend: svc, path: '/a?ids={items}', foreach: src.ids }\n",
    qr/calls\[1\]\.path: \{items\} is the elements of a batch/);
refused('{item} with batch', $src . "      - { name: a, backend: svc, path: '/a/{item}', foreach: src.ids, batch: 5 }\n",
    qr/calls\[1\]\.path: \{item\} is one element, but with batch:/);
refused('{items} without foreach', $src . "      - { name: a, backend: svc, path: '/a?ids={items}' }\n",
    qr/calls\[1\]\.path: \{items\} is the elements of a batch/);
refused('a field of a foreach call', $src
    . "      - { name: a, backend: svc, path: '/a/{item}', foreach: src.ids }\n"
    . "      - { name: b, backend: svc, path: '/b/{a.id}' }\n",
    qr/calls\[2\]\.path: .*"a" is a foreach call/);
refused('foreach without {item}', $src . "      - { name: a, backend: svc, path: /a, foreach: src.ids }\n",
    qr/calls\[1\]\.path: a foreach call's path or body must use \{item\}/);
refused('an unknown source', $src . "      - { name: a, backend: svc, path: '/a/{item}', foreach: nope.ids }\n",
    qr/calls\[1\]\.foreach: unknown call "nope"/);
refused('concurrency 257', $src . "      - { name: a, backend: svc, path: '/a/{item}', foreach: src.ids, concurrency: 257 }\n",
    qr/concurrency: 257 is out of range \(1 to 256\)/);
refused('max_items 10001', $src . "      - { name: a, backend: svc, path: '/a/{item}', foreach: src.ids, max_items: 10001 }\n",
    qr/max_items: 10001 is out of range \(1 to 10000\)/);
refused('foreach in merge: merge', "    merge: merge\n    on_conflict: last\n" . $src
    . "      - { name: a, backend: svc, path: '/a/{item}', foreach: src.ids }\n",
    qr/calls\[1\]\.foreach: a foreach call's answer is an array, which merge: merge cannot merge/);

subtest '--explain shows the fan-out bound' => sub {
    my $file = sprintf '%s/fe%02d.yaml', $dir, ++$n;
    open my $fh, '>', $file or die "$file: $!";
    print $fh "listen:\n  - port: 8080\nbackends:\n  svc:\n    url: http://127.0.0.1:9001\n    timeout: 50ms\nroutes:\n"
        . "  - path: /x\n$src      - { name: a, backend: svc, path: '/a?ids={items}', foreach: src.ids, batch: 10, concurrency: 4 }\n";
    close $fh;
    my $r = run_cmd([$conflux, '--explain', '-c', $file], timeout => 10);
    is($r->{code}, 0, 'exit 0');
    like($r->{out}, qr/foreach src\.ids: one request per 10 elements \(\{items\}, batch 10\), up to 10 requests \(max_items 100/,
        'source, batch and the most requests');
    like($r->{out}, qr/concurrency 4/, 'concurrency');
    like($r->{out}, qr/at least ceil\(n\/40\) rounds .* at most 3 rounds of timeout 50ms = 150ms/, 'rounds');
    like($r->{out}, qr/deadline 200ms; the longest chain of timeouts is 200ms: src \(50ms\) -> a \(3 x 50ms\)/,
        'the default deadline counts the rounds');
};

$gw->finish;
$mock->finish;
done_testing();
