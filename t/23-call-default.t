# default: a failed call gives that value instead of null, and the failure is still reported in Conflux-Complete,
# Proxy-Status, Server-Timing and the access log; the calls that use its fields see the default.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /broken
    status: 500
    body: '{"error": "boom"}'
  - path: /profile
    body: '{"segment": "gold", "name": "ann"}'
  - path: /seg/{segment}
    body: '{"recs": ["{segment}-1"]}'
  - path: /slow
    body: '{"late": true}'
    delay: 2s
  - path: /list
    body: '[1, 2]'
EOF
my $m = $mock->port;
my $dead = empty_port(); # nothing listens there

my $gw = spawn_conflux(<<"EOF");
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 3s }
  gone: { url: "http://127.0.0.1:$dead" }
routes:
  - path: /page
    calls:
      - name: profile
        backend: svc
        path: /broken
        default: { segment: general, name: null, tags: [], score: 0.92 }
      - { name: recs, backend: svc, path: "/seg/{profile.segment}" }
      - { name: count, backend: gone, path: /x, default: 0 }
      - { name: label, backend: gone, path: /x, default: "42" }
      - { name: mixed, backend: gone, path: /x, default: [1, 2.5, true, null, "s"] }
      - { name: plain, backend: gone, path: /x }
      - { name: fine, backend: svc, path: /profile, default: { unused: true } }
  - path: /late
    deadline: 200ms
    calls:
      - { name: slow, backend: svc, path: /slow, default: { late: false } }
  - path: /merged
    merge: merge
    calls:
      - { name: p, backend: svc, path: /profile, allow: [name] }
      - { name: b, backend: svc, path: /broken, allow: [segment], default: { segment: none } }
      - { name: l, backend: svc, path: /list, allow: [count], default: { count: 0 } }
EOF

subtest 'a failed call gives its default; the failure is still reported' => sub {
    my $r = http_get($gw->url('/page'));
    is($r->{status}, 200, "status 200");
    my $doc = decode_json_ok($r->{body});
    is_deeply($doc->{profile}, { segment => 'general', name => undef, tags => [], score => 0.92 }, 'the mapping, with its types');
    like($r->{body}, qr/"score":0\.92[,}]/, 'a real as written (0.92)');
    is($doc->{count}, 0, 'a number');
    like($r->{body}, qr/"count":0[,}]/, '... in the JSON text');
    like($r->{body}, qr/"label":"42"/, 'a quoted scalar is a string');
    is_deeply($doc->{mixed}, [1, 2.5, JSON::PP::true, undef, 's'], 'a list of mixed types');
    ok(exists $doc->{plain} && !defined $doc->{plain}, 'a call without default: null');
    is_deeply($doc->{fine}, { segment => 'gold', name => 'ann' }, 'a call that succeeds gives its answer, not its default');
    is_deeply($doc->{recs}, { recs => ['general-1'] }, 'a call using the failed call\'s field sees the default');
    is($r->{headers}{'conflux-complete'}, 'false', 'Conflux-Complete: false');
    like($r->{headers}{'proxy-status'}, qr/details="profile"/, 'Proxy-Status names the failed call');
    like($r->{headers}{'proxy-status'}, qr/details="count"/, '... each of them');
    like($r->{headers}{'server-timing'}, qr/profile;dur=[\d.]+;desc="status_500"/, 'Server-Timing: its reason');
};

subtest 'a call cut by the deadline gives its default' => sub {
    my $r = http_get($gw->url('/late'));
    is($r->{status}, 200, "status 200");
    is_deeply(decode_json_ok($r->{body}), { slow => { late => JSON::PP::false } }, 'the default');
    like($r->{headers}{'server-timing'}, qr/slow;dur=[\d.]+;desc="deadline"/, 'Server-Timing: deadline');
    is($r->{headers}{'conflux-complete'}, 'false', 'Conflux-Complete: false');
};

subtest 'merge: merge merges a failed call\'s default, also one failed with not_an_object' => sub {
    my $r = http_get($gw->url('/merged'));
    is($r->{status}, 200, "status 200");
    is_deeply(decode_json_ok($r->{body}), { name => 'ann', segment => 'none', count => 0 }, 'the defaults\' members merged');
    like($r->{headers}{'server-timing'}, qr/l;dur=[\d.]+;desc="not_an_object"/, 'the array answer is still reported');
};

subtest 'conflux -t refuses a default that cannot be meant' => sub {
    my $head = "listen: [{port: 1}]\nbackends:\n  svc: { url: \"http://127.0.0.1:$m\" }\nroutes:\n  - path: /x\n";
    my @cases = (
        [ "    calls:\n      - { name: a, backend: svc, path: /a, required: true, default: 1 }\n",
          qr/a required call has no default/, 'required and default' ],
        [ "    calls:\n      - { name: a, backend: svc, path: /a, on_error: omit, default: 1 }\n",
          qr/on_error: omit drops .* default: gives it a value/, 'omit and default' ],
        [ "    merge: merge\n    calls:\n      - { name: a, backend: svc, path: /a, allow: [x], default: [1] }\n",
          qr/with merge: merge a default must be a mapping/, 'merge mode and a list' ],
        [ "    merge: merge\n    calls:\n      - { name: a, backend: svc, path: /a, allow: [x] }\n"
            . "      - { name: b, backend: svc, path: /b, allow: [y], default: { x: 0 } }\n",
          qr/"x"/, 'merge mode: a default\'s key that another call gives' ],
        [ "    calls:\n      - { name: a, backend: svc, path: /a, default: 1e999 }\n",
          qr/1e999 is out of the range of a JSON number/, 'a number out of range' ],
        [ "    calls:\n      - { name: a, backend: svc, path: /a, default: 0x1F }\n",
          qr/0x1F is a number in YAML that JSON cannot carry as written/, 'a YAML number JSON cannot carry' ],
        [ "    calls:\n      - { name: a, backend: svc, path: /a, default: \"{user_id}\" }\n",
          qr/a default is a fixed value: no \{\.\.\.\} placeholder/, 'a placeholder' ],
        [ "    calls:\n      - { name: a, backend: svc, path: /a, default: !!binary aGVsbG8= }\n",
          qr/the YAML tag tag:yaml\.org,2002:binary is not read here/, 'a YAML tag' ],
        [ "    calls:\n      - { name: a, backend: svc, path: /a, default: { <<: { x: 1 }, y: 2 } }\n",
          qr/YAML merge keys \(<<\) are not read here/, 'a merge key' ],
        [ "    calls:\n      - { name: a, backend: svc, path: /a, default: { k: 1, k: 2 } }\n",
          qr/"k" appears twice in this mapping/, 'a key given twice' ],
    );
    # an alias bomb: each level refers to the one below twice, 2^30 values once expanded
    my $bomb = "    calls:\n      - name: a\n        backend: svc\n        path: /a\n        default: &l0 [x, x]\n";
    $bomb .= "      - { name: a$_, backend: svc, path: /a, default: &l$_ [*l" . ($_ - 1) . ', *l' . ($_ - 1) . "] }\n" for 1 .. 30;
    push @cases, [ $bomb, qr/more than 4096 values in all/, 'an alias bomb is refused, not expanded' ];
    my $i = 0;
    for my $c (@cases) {
        my $file = write_file(tmpdir() . '/default-' . ++$i . '.yaml', $head . $c->[0]);
        my $r = run_cmd([bindir() . '/conflux', '-t', '-c', $file], timeout => 10);
        is($r->{code}, 1, "$c->[2]: exit 1");
        like($r->{err}, $c->[1], "$c->[2]: the message") or diag $r->{err};
        note $r->{err};
        like($r->{err}, qr/default-$i\.yaml:\d+:\d+: /, "$c->[2]: file:line:col");
    }
};

done_testing;
