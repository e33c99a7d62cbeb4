# {request.body} over HTTP/2, and a body over limits.max_request_body on HTTP/2 (docs/http.md: "On HTTP/2, libh2o
# answers this one itself, in plain text"). The second subtest is a TODO: libh2o 2.2.5 resets the stream with
# REFUSED_STREAM instead, which tells a client the request was not processed and may be retried as is (RFC 9113 8.7):
# curl retries it five times, uploading the whole body each time.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Select;
use Test::More;

$SIG{PIPE} = 'IGNORE';
my ($cert, $key) = self_signed_cert() or die 'openssl could not make a certificate';

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /sink
    method: '*'
    body: '{"ok": true}'
EOF
my $m = $mock->port;
my $port = empty_port();
my $gw = spawn_conflux(<<"EOF");
listen:
  - host: 127.0.0.1
    port: $port
    tls: { certificate: $cert, key: $key }
    http2: true
threads: 1
limits: { max_request_body: 1024 }
backends:
  m: { url: "http://127.0.0.1:$m" }
routes:
  - path: /raw
    methods: [POST]
    calls:
      - { name: send, backend: m, method: POST, path: /sink, body: "{request.body}" }
EOF

# POST /raw with a body of $len bytes (a JSON string), in DATA frames of at most 16000 bytes; the frames that came back.
sub h2_post {
    my ($len) = @_;
    my $s = h2_connect($port);
    my $hb = "\x83\x87" . "\x04\x04/raw" . "\x01\x09localhost";
    my $body = '"' . ('a' x ($len - 2)) . '"';
    my $out = h2_frame(1, 0x4, 1, $hb);
    while (length $body) {
        my $c = substr($body, 0, 16000, '');
        $out .= h2_frame(0, length($body) ? 0 : 1, 1, $c);
    }
    syswrite($s, $out);
    my ($buf, $sel, $end) = ('', IO::Select->new($s), time + 5);
    my @frames;
    while (time < $end && $sel->can_read(1)) {
        my $n = sysread($s, my $b, 65536);
        last unless $n;
        $buf .= $b;
        push @frames, grep { $_->[2] == 1 } h2_parse(\$buf);
        last if grep { ($_->[0] == 0 && $_->[1] & 1) || $_->[0] == 3 } @frames;
    }
    close $s;
    return \@frames;
}

subtest 'a body at the limit is forwarded over HTTP/2' => sub {
    $mock->reset;
    my $f = h2_post(1024);
    ok((grep { $_->[0] == 1 } @$f), 'HEADERS came back');
    my ($data) = grep { $_->[0] == 0 } @$f;
    is $data && $data->[3], '{"send":{"ok":true}}', 'answered';
    is length($mock->journal('/sink')->[-1]{body} // ''), 1024, 'the upstream got the 1024 bytes';
};

subtest 'a body over the limit on HTTP/2 gets a 413, not RST_STREAM(REFUSED_STREAM)' => sub {
    local $TODO = 'libh2o 2.2.5 resets the stream itself; conflux does not count DATA per stream yet (docs/http.md, 413)';
    $mock->reset;
    my $f = h2_post(1025);
    my ($rst) = grep { $_->[0] == 3 } @$f;
    ok !($rst && unpack('N', $rst->[3]) == 7), 'not reset with REFUSED_STREAM (7): clients retry that as is'
        or diag 'RST_STREAM code ' . unpack('N', $rst->[3]);
    ok((grep { $_->[0] == 1 } @$f), 'a response (HEADERS) came back: the 413');
    is scalar @{ $mock->journal('/sink') }, 0, 'nothing sent upstream';
};

done_testing;
