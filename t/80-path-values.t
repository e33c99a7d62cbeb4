# Path values: a value that fills an upstream path segment may not climb out of it once the upstream decodes it
# ("..%2Fadmin" reaching nginx's location /admin); a client's gets 400 before any call, an upstream's fails its call.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /users/{id}
    body: '{"id": "{id}"}'
  - path: /side
    body: '{"name": "side"}'
  - path: /later/{a}/{b}
    body: '{"ok": true}'
  - path: /search
    body: '{"ok": true}'
  - path: /admin
    body: '{"admin": true}'
  - path: /profiles/evil
    body: '{"segment": "../admin"}'
  - path: /profiles/dots
    body: '{"segment": ".."}'
  - path: /profiles/back
    body: '{"segment": "..\\admin"}'
  - path: /profiles/good
    body: '{"segment": "gold"}'
  - path: /recs/{segment}
    body: '{"recs": ["{segment}-1"]}'
  - path: /projects/{id}
    body: '{"project": "{id}"}'
  - path: /proxy/{id}
    body: '{"proxied": "{id}"}'
  - path: /files/{rest*}
    body: '{"file": "{rest}"}'
EOF
my $m = $mock->port;

my $gw = spawn_conflux(<<"EOF");
backends:
  svc:
    url: http://127.0.0.1:$m
routes:
  - path: /u/{id}
    calls:
      - { name: user, backend: svc, path: "/users/{id}" }
  - path: /w/{id}
    calls:
      - { name: side, backend: svc, path: /side }
      - { name: later, backend: svc, path: "/later/{side.name}/{id}" }
  - path: /q
    calls:
      - { name: user, backend: svc, path: "/users/{query.id}" }
  - path: /h
    calls:
      - { name: user, backend: svc, path: "/users/{header.x-id}" }
  - path: /s
    calls:
      - { name: search, backend: svc, path: "/search?id={query.id}&h={header.x-id}" }
  - path: /chain/{name}
    calls:
      - { name: profile, backend: svc, path: "/profiles/{name}" }
      - { name: recs, backend: svc, path: "/recs/{profile.segment}" }
  - path: /chainreq/{name}
    calls:
      - { name: profile, backend: svc, path: "/profiles/{name}" }
      - { name: recs, backend: svc, path: "/recs/{profile.segment}", required: true }
  - path: /p/{id}
    calls:
      - { name: project, backend: svc, path: "/projects/{id}", encoded_slash: keep }
  - path: /pq
    calls:
      - { name: project, backend: svc, path: "/projects/{query.id}", encoded_slash: keep }
  - path: /proxy/{id}
    proxy: svc
  - path: /f/{rest*}
    calls:
      - { name: file, backend: svc, path: "/files/{rest}" }
EOF

# One request over a raw socket, so that the path goes out byte for byte: {status, headers, body}.
sub raw_get {
    my ($path, %headers) = @_;
    my $h = join '', map { "$_: $headers{$_}\r\n" } sort keys %headers;
    return raw_request($gw->port, "GET $path HTTP/1.1\r\nHost: x\r\n${h}Connection: close\r\n\r\n", timeout => 10);
}

sub reset_journal { $mock->reset }
sub journal { $mock->journal }

# After a refused request: sends a good one through the same route (`$control`, which must answer 200) and checks
# that the journal since the last reset holds exactly the control's upstream requests. Whatever the refused request
# could have sent went out before its own answer, and the control's requests show the journal is being written.
sub only_control_went_out {
    my ($name, $control, @control_paths) = @_;
    is raw_get($control)->{status}, 200, "$name: then $control: 200";
    my @paths = map { $_->{path} } @{ journal() };
    is_deeply \@paths, \@control_paths, "$name: no upstream request but the control's" or diag explain \@paths;
}

subtest 'the reported attack and its variants: 400 from the route parameter, no upstream request' => sub {
    for my $route ('/u', '/w') {
        for my $value ('..%2Fadmin', 'x%2F..%2F..%2Fadmin', '%2e%2e', '%2E', '..%5Cadmin', 'a%2Fb', '..%2F', 'a%5Cb',
                       '%2e%2E%2Fadmin', '%2F') {
            reset_journal();
            my $r = raw_get("$route/$value");
            is $r->{status}, 400, "$route/$value: 400";
            my $doc = decode_json_ok($r->{body}, "$route/$value: a JSON error");
            if ($value =~ /^%2e%2e$|^%2E$/i) {
                # a whole segment that decodes to "." or "..": the router refuses the path itself
                is $doc->{error}, 'bad_request', "$route/$value: refused as a malformed path";
            } else {
                is $doc->{error}, 'bad_param', "$route/$value: error bad_param";
                like $doc->{message}, qr/^path parameter "id": /, "$route/$value: the message names the parameter";
            }
            only_control_went_out("$route/$value", "$route/42", $route eq '/u' ? ('/users/42') : ('/side', '/later/side/42'));
        }
    }
};

subtest 'a value with dots that is not a dot segment still goes through' => sub {
    reset_journal();
    for my $value ('...', '.x', 'a..b', '%252e%252e', '%252F') {
        my $r = raw_get("/u/$value");
        is $r->{status}, 200, "/u/$value: 200";
    }
    my @paths = map { $_->{path} } @{ journal() };
    is_deeply \@paths, ['/users/...', '/users/.x', '/users/a..b', '/users/%252e%252e', '/users/%252F'],
        'sent as one segment each (a literal % is encoded as %25)';
};

subtest 'query and header values that fill a path segment: 400 naming the parameter' => sub {
    my @cases = (
        ['/q?id=..%2Fadmin', {}, qr/^query parameter "id": /],
        ['/q?id=..', {}, qr/^query parameter "id": /],
        ['/q?id=%2e%2E', {}, qr/^query parameter "id": /],
        ['/q?id=.', {}, qr/^query parameter "id": /],
        ['/q?id=a/b', {}, qr/^query parameter "id": /],
        ['/q?id=a%5Cb', {}, qr/^query parameter "id": /],
        ['/h', { 'X-Id' => '../admin' }, qr/^header "x-id": /],
        ['/h', { 'X-Id' => '..' }, qr/^header "x-id": /],
        ['/h', { 'X-Id' => 'a\\b' }, qr/^header "x-id": /],
    );
    for my $c (@cases) {
        reset_journal();
        my ($path, $headers, $msg) = @$c;
        my $name = $path . join('', map { " $_: $headers->{$_}" } sort keys %$headers);
        my $r = raw_get($path, %$headers);
        is $r->{status}, 400, "$name: 400";
        my $doc = decode_json_ok($r->{body}, "$name: a JSON error");
        is $doc->{error}, 'bad_param', "$name: error bad_param";
        like $doc->{message}, $msg, "$name: names the parameter";
        only_control_went_out($name, '/q?id=42', '/users/42');
    }
};

subtest 'in a query value, "/" and ".." are harmless: encoded and sent' => sub {
    reset_journal();
    my $r = raw_get('/s?id=..%2F..%2Fadmin', 'X-Id' => 'a\\..');
    is $r->{status}, 200, 'status 200';
    my $j = journal();
    is scalar(@$j), 1, 'one upstream request';
    is $j->[0]{path}, '/search', 'path /search';
    is $j->[0]{query}, 'id=..%2F..%2Fadmin&h=a%5C..', 'the values encoded as query values';
};

subtest 'a value from an upstream JSON field fails that call with bad_param' => sub {
    for my $name ('evil', 'dots', 'back') {
        reset_journal();
        my $r = raw_get("/chain/$name");
        is $r->{status}, 200, "$name: 200 (recs is optional)";
        my $doc = decode_json_ok($r->{body}, "$name: JSON");
        ok exists $doc->{recs} && !defined $doc->{recs}, "$name: recs is null";
        ok defined $doc->{profile}{segment}, "$name: profile is there";
        is $r->{headers}{'conflux-complete'}, 'false', "$name: Conflux-Complete: false";
        like $r->{headers}{'server-timing'}, qr/recs;dur=[\d.]+;desc="bad_param"/, "$name: Server-Timing says bad_param";
        is $r->{headers}{'proxy-status'}, 'conflux; error=http_request_error; details="recs"', "$name: Proxy-Status";
        my @paths = map { $_->{path} } @{ journal() };
        is_deeply \@paths, ["/profiles/$name"], "$name: only the profile request went out (none to /recs or /admin)";
    }

    reset_journal();
    my $r = raw_get('/chainreq/evil');
    is $r->{status}, 502, 'a required call with bad_param: 502';
    is_deeply decode_json_ok($r->{body}), { error => 'bad_param', call => 'recs', status => undef }, 'the failure body';
    is $r->{headers}{'proxy-status'}, 'conflux; error=http_request_error; details="recs"', 'Proxy-Status';
    is_deeply [ map { $_->{path} } @{ journal() } ], ['/profiles/evil'], 'nothing went to /recs or /admin';

    reset_journal();
    $r = raw_get('/chain/good');
    is $r->{status}, 200, 'a good field: 200';
    is_deeply decode_json_ok($r->{body}), { profile => { segment => 'gold' }, recs => { recs => ['gold-1'] } }, 'both calls';
    is $r->{headers}{'conflux-complete'}, 'true', 'complete';
};

subtest 'encoded_slash: keep sends %2F in one segment and still refuses dot segments' => sub {
    reset_journal();
    my $r = raw_get('/p/group%2Fproject');
    is $r->{status}, 200, '/p/group%2Fproject: 200';
    is_deeply decode_json_ok($r->{body}), { project => { project => 'group%2Fproject' } }, 'the upstream saw one segment';
    $r = raw_get('/pq?id=group/sub/project');
    is $r->{status}, 200, '/pq?id=group/sub/project: 200';
    is_deeply [ map { $_->{path} } @{ journal() } ], ['/projects/group%2Fproject', '/projects/group%2Fsub%2Fproject'],
        'the journal shows the raw paths with %2F';

    for my $bad ('/p/..%2Fadmin', '/p/a%2F..', '/p/a%2F.%2Fb', '/p/a%5Cb', '/pq?id=..', '/pq?id=.', '/pq?id=../admin',
                 '/pq?id=a%5Cb') {
        reset_journal();
        my $r = raw_get($bad);
        is $r->{status}, 400, "$bad: 400";
        my $doc = decode_json_ok($r->{body}, "$bad: a JSON error");
        is $doc->{error}, 'bad_param', "$bad: bad_param";
        like $doc->{message}, qr/^(path|query) parameter "id": a value that holds "\\" or a "\." or "\.\." segment/,
            "$bad: says what keep still refuses";
        only_control_went_out($bad, '/p/ok', '/projects/ok');
    }
};

subtest 'proxy routes: a {param} that decodes to hold "/" or "\\" gets 400 too' => sub {
    for my $value ('..%2Fadmin', 'x%2F..%2F..%2Fadmin', '..%5Cadmin', 'a%2Fb') {
        reset_journal();
        my $r = raw_get("/proxy/$value");
        is $r->{status}, 400, "/proxy/$value: 400";
        is decode_json_ok($r->{body}, "/proxy/$value: JSON")->{error}, 'bad_param', "/proxy/$value: bad_param";
        only_control_went_out("/proxy/$value", '/proxy/ok', '/proxy/ok');
    }
};

subtest '{rest*} values keep their slashes but not a backslash' => sub {
    for my $value ('a/..%5Cadmin', 'a%5Cb', '%5C') {
        reset_journal();
        my $r = raw_get("/f/$value");
        is $r->{status}, 400, "/f/$value: 400";
        my $doc = decode_json_ok($r->{body}, "/f/$value: JSON");
        is $doc->{error}, 'bad_param', "/f/$value: bad_param";
        like $doc->{message}, qr/^path parameter "rest": /, "/f/$value: names the parameter";
        only_control_went_out("/f/$value", '/f/a/b', '/files/a/b');
    }
};

done_testing;
