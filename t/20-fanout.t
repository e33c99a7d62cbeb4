# Fan-out: calls run at once, dependent calls start when their inputs arrive, answers merge into one document.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /slow/{name}
    status: 200
    body: '{"name": "{name}", "segment": "gold", "n": 7}'
    delay: 300ms
  - path: /half/{name}
    body: '{"name": "{name}"}'
    delay: 500ms
  - path: /seg/{segment}
    body: '{"recs": ["{segment}-1", "{segment}-2"]}'
    delay: 300ms
  - path: /num/{n}
    body: '{"got": "{n}"}'
  - path: /echo
    body: '{"ok": true}'
  - path: /a
    body: '{"id": 1, "name": "a", "extra": "x"}'
  - path: /b
    body: '{"total": 5, "name": "b"}'
  - path: /list
    body: '[{"id": 1, "secret": "s"}, {"id": 2, "secret": "t"}]'
  - path: /nested
    body: '{"data": {"items": [{"id": 1, "total": 9, "x": 0}]}}'
  - path: /score
    body: '{"score": 0.92, "ratio": 54.9, "whole": 3.0, "big": 1e300, "n": -7, "ok": true}'
  - path: /took
    body: '{"ok": true}'
EOF
my $m = $mock->port;

my $gw = spawn_conflux(<<"EOF");
backends:
  svc:
    url: http://127.0.0.1:$m
    timeout: 2s
routes:
  - path: /three/{id}
    calls:
      - { name: one,   backend: svc, path: "/slow/1-{id}" }
      - { name: two,   backend: svc, path: "/slow/2-{id}" }
      - { name: three, backend: svc, path: "/slow/3-{id}" }
  - path: /pair
    calls:
      - { name: a, backend: svc, path: /half/a }
      - { name: b, backend: svc, path: /half/b }
  - path: /chain/{id}
    calls:
      - { name: profile, backend: svc, path: "/slow/{id}" }
      - { name: recs, backend: svc, path: "/seg/{profile.segment}" }
      - { name: side, backend: svc, path: /slow/side }
      - { name: count, backend: svc, path: "/num/{profile.n}" }
  - path: /fwd
    forward_headers: [Authorization, X-Tenant]
    forward_query: [lang]
    calls:
      - { name: e, backend: svc, path: "/echo?q={query.q}&t={header.x-tenant}" }
  - path: /missing
    calls:
      - { name: e, backend: svc, path: "/echo?q={query.q}" }
      - { name: o, backend: svc, path: "/echo?q={query.q}", on_error: omit }
      - { name: ok, backend: svc, path: /echo }
  - path: /merged
    merge: merge
    on_conflict: last
    calls:
      - { name: a, backend: svc, path: /a }
      - { name: b, backend: svc, path: /b }
  - path: /merged-required
    merge: merge
    on_conflict: last
    calls:
      - { name: a, backend: svc, path: /a }
      - { name: list, backend: svc, path: /list, required: true }
      - { name: after, backend: svc, path: "/num/{a.id}" }
  - path: /shaped
    calls:
      - { name: list, backend: svc, path: /list, deny: [secret] }
      - { name: orders, backend: svc, path: /nested, target: data.items, allow: [id, total], rename: { total: amount } }
  - path: /numbers
    calls:
      - { name: s, backend: svc, path: /score }
      - { name: t, backend: svc, path: "/took?score={s.score}&ratio={s.ratio}&whole={s.whole}&big={s.big}&n={s.n}&ok={s.ok}" }
EOF

subtest 'three 300 ms calls answer in about 300 ms, not 900' => sub {
    my $r = http_get($gw->url('/three/9'));
    is $r->{status}, 200, 'status 200';
    is $r->{headers}{'content-type'}, 'application/json', 'JSON content type';
    cmp_ok $r->{elapsed}, '>=', 0.29, 'not faster than one call';
    cmp_ok $r->{elapsed}, '<', 0.6, 'about one call, not three in a row';
    my $doc = decode_json_ok($r->{body});
    is_deeply [ map { $doc->{$_}{name} } qw(one two three) ], [qw(1-9 2-9 3-9)], 'each call answered';
    like $r->{body}, qr/^\{"one":.*"two":.*"three":/, 'members in config order';
    is $r->{headers}{'conflux-complete'}, 'true', 'Conflux-Complete: true';
    like $r->{headers}{'server-timing'},
        qr/^one;dur=\d+\.\d;desc="ok", two;dur=\d+\.\d;desc="ok", three;dur=\d+\.\d;desc="ok", total;dur=\d+\.\d$/,
        'Server-Timing names every call and the total';
    ok !exists $r->{headers}{'proxy-status'}, 'no Proxy-Status when nothing failed';
};

subtest '200 concurrent clients on a two-call 500 ms route all finish in about 0.5 s' => sub {
    my ($res, $wall) = http_parallel(200, $gw->url('/pair'));
    is scalar(@$res), 200, '200 answers';
    is scalar(grep { $_->{status} == 200 } @$res), 200, 'all 200';
    my ($max) = sort { $b <=> $a } map { $_->{elapsed} } @$res;
    cmp_ok $max, '<', 1.2, "slowest request took ${max}s (one 500 ms round, not queued behind others)";
    cmp_ok $wall, '<', 2.5, "the whole batch took ${wall}s";
};

subtest 'a dependent call starts when its input arrives; independent calls do not wait' => sub {
    my $r = http_get($gw->url('/chain/u1'));
    is $r->{status}, 200, 'status 200';
    my $doc = decode_json_ok($r->{body});
    is_deeply $doc->{recs}, { recs => [ 'gold-1', 'gold-2' ] }, 'recs used profile.segment';
    is_deeply $doc->{count}, { got => '7' }, 'a number field is written as text';
    cmp_ok $r->{elapsed}, '>=', 0.58, 'the chain takes the sum of its links';
    cmp_ok $r->{elapsed}, '<', 0.95, 'but no more';
    my ($side) = $r->{headers}{'server-timing'} =~ /side;dur=([\d.]+)/;
    cmp_ok $side, '<', 450, "the independent call took ${side} ms, it did not wait for the chain";
    like $r->{body}, qr/^\{"profile":.*"recs":.*"side":.*"count":/, 'members in config order, not completion order';
};

subtest 'forwarded headers and query parameters, and nothing else' => sub {
    $mock->reset;
    my $r = http_get($gw->url('/fwd?q=hello%20world&lang=fr&secret=1'),
                     { Authorization => 'Bearer abc', 'X-Tenant' => 't1', Cookie => 'session=zzz', 'X-Other' => 'no' });
    is $r->{status}, 200, 'status 200';
    my $journal = $mock->journal('/echo');
    is scalar(@$journal), 1, 'one upstream request';
    my $e = $journal->[0];
    is $e->{query}, 'q=hello%20world&t=t1&lang=fr', 'template values encoded, forward_query appended';
    is $e->{headers}{authorization}, 'Bearer abc', 'Authorization forwarded';
    is $e->{headers}{'x-tenant'}, 't1', 'X-Tenant forwarded';
    ok !exists $e->{headers}{cookie}, 'Cookie not forwarded';
    ok !exists $e->{headers}{'x-other'}, 'X-Other not forwarded';
};

subtest 'a missing template value fails only its call with missing_param' => sub {
    my $r = http_get($gw->url('/missing'));
    is $r->{status}, 200, 'status 200';
    is $r->{body}, '{"e":null,"ok":{"ok":true}}', 'null for on_error null, absent for omit';
    is $r->{headers}{'conflux-complete'}, 'false', 'Conflux-Complete: false';
    like $r->{headers}{'server-timing'}, qr/e;dur=[\d.]+;desc="missing_param"/, 'reason in Server-Timing';
    like $r->{headers}{'proxy-status'}, qr/error=http_request_error; details="e"/, 'Proxy-Status for the failed call';
};

subtest 'merge mode merges top-level members in config order' => sub {
    my $r = http_get($gw->url('/merged'));
    is $r->{status}, 200, 'status 200';
    is_deeply decode_json_ok($r->{body}), { id => 1, name => 'b', extra => 'x', total => 5 }, 'last wins on conflict';
};

subtest 'merge mode: a required call whose answer is not an object fails the request' => sub {
    my $r = http_get($gw->url('/merged-required'));
    is $r->{status}, 502, 'status 502';
    is_deeply decode_json_ok($r->{body}), { error => 'not_an_object', call => 'list', status => 200 }, 'the reason and the call';
};

subtest 'target, allow, deny and rename shape each call' => sub {
    my $r = http_get($gw->url('/shaped'));
    is_deeply decode_json_ok($r->{body}),
        { list => [ { id => 1 }, { id => 2 } ], orders => [ { id => 1, amount => 9 } ] }, 'shaped documents';
};

subtest 'conflux answers its own errors in JSON' => sub {
    my $r = http_get($gw->url('/nowhere'));
    is $r->{status}, 404, 'unknown path: 404';
    is decode_json_ok($r->{body})->{error}, 'not_found', 'JSON error';
    $r = http_request('DELETE', $gw->url('/pair'));
    is $r->{status}, 405, 'wrong method: 405';
    is $r->{headers}{allow}, 'GET, HEAD', 'Allow lists the methods';
    is decode_json_ok($r->{body})->{error}, 'method_not_allowed', 'JSON error';
    $r = http_request('HEAD', $gw->url('/three/1'));
    is $r->{status}, 200, 'HEAD is allowed by default';
    is $r->{body}, '', 'HEAD has no body';
    my $get = http_get($gw->url('/three/1'));
    is $r->{headers}{'content-length'}, length($get->{body}), 'HEAD: the Content-Length of the GET\'s body';
    is $r->{headers}{$_}, $get->{headers}{$_}, "HEAD: the GET's $_" for qw(content-type conflux-complete);
};

subtest 'a number from a call goes into another call\'s URL as the answer writes it (0.92, not 0.92000000000000004)' => sub {
    http_request('POST', $mock->url('/__mock/reset'));
    my $r = http_get($gw->url('/numbers'));
    is $r->{status}, 200, 'status 200';
    like $r->{body}, qr/"s":\{"score":0\.92,"ratio":54\.9,"whole":3\.0,"big":1e\+300,"n":-7,"ok":true\}/,
        'the answer writes each number in its shortest form';
    my $journal = decode_json_ok(http_get($mock->url('/__mock/requests?path=/took'))->{body});
    is scalar(@$journal), 1, 'one request to /took';
    is $journal->[0]{query}, 'score=0.92&ratio=54.9&whole=3&big=1e%2B300&n=-7&ok=true',
        'the template values are the same text, percent-encoded, an integral real without its ".0"';
};

done_testing;
