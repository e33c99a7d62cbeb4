# Keys, JWK Sets and tokens for the JWT tests, made with the openssl command line: RSA 2048, EC P-256 and Ed25519 key
# pairs, their public JWKs, and compact JWS tokens signed with them (ES256's DER signature turned into r || s).
package CfJwt;
use strict;
use warnings;
use Exporter 'import';
use JSON::PP ();
use MIME::Base64 qw(encode_base64url);
use CfTest qw(tmpdir write_file slurp);

our @EXPORT = qw(make_key jwk jwks_json b64u sign_token token_for);

my $JSON = JSON::PP->new->canonical;
my $N = 0;

sub _openssl {
    my (@args) = @_;
    system('openssl', @args) == 0 or die "openssl @args: failed\n";
}

sub b64u { encode_base64url($_[0]) }

# make_key('RS256' | 'ES256' | 'EdDSA' | 'RS1024', kid): {alg, kid, pem (private key file), pub (public PEM bytes),
# raw public parts}
sub make_key {
    my ($alg, $kid) = @_;
    my $dir = tmpdir();
    my $pem = "$dir/jwt-key-$$-" . ++$N . '.pem';
    if ($alg =~ /^RS(\d*)/) {
        my $bits = $alg eq 'RS1024' ? 1024 : 2048;
        _openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', "rsa_keygen_bits:$bits", '-out', $pem, '-quiet');
    } elsif ($alg eq 'ES256') {
        _openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', $pem, '-quiet');
    } else {
        _openssl('genpkey', '-algorithm', 'ED25519', '-out', $pem, '-quiet');
    }
    _openssl('pkey', '-in', $pem, '-pubout', '-out', "$pem.pub");
    _openssl('pkey', '-in', $pem, '-pubout', '-outform', 'DER', '-out', "$pem.der");
    my $k = { alg => ($alg eq 'RS1024' ? 'RS256' : $alg), kid => $kid, pem => $pem, pub => slurp("$pem.pub"),
              der => slurp("$pem.der") };
    if ($alg =~ /^RS/) {
        my $mod = `openssl rsa -in $pem -noout -modulus 2>/dev/null`;
        $mod =~ s/^Modulus=//;
        chomp $mod;
        $mod = "0$mod" if length($mod) % 2;
        $k->{n} = pack('H*', $mod);
        $k->{e} = "\x01\x00\x01";
    }
    return $k;
}

# The public JWK of a key (extra members merged in).
sub jwk {
    my ($k, %extra) = @_;
    my %j;
    if ($k->{alg} eq 'RS256') {
        %j = (kty => 'RSA', n => b64u($k->{n}), e => b64u($k->{e}));
    } elsif ($k->{alg} eq 'ES256') {
        my $pt = substr($k->{der}, -65);
        %j = (kty => 'EC', crv => 'P-256', x => b64u(substr($pt, 1, 32)), y => b64u(substr($pt, 33, 32)));
    } else {
        %j = (kty => 'OKP', crv => 'Ed25519', x => b64u(substr($k->{der}, -32)));
    }
    $j{kid} = $k->{kid} if defined $k->{kid};
    return { %j, %extra };
}

sub jwks_json { $JSON->encode({ keys => [map { ref $_ eq 'HASH' && $_->{kty} ? $_ : jwk($_) } @_] }) }

# DER ECDSA-Sig-Value -> r || s, 32 bytes each
sub _der_to_raw {
    my ($der) = @_;
    my ($rlen) = unpack('C', substr($der, 3, 1));
    my $r = substr($der, 4, $rlen);
    my $slen = unpack('C', substr($der, 4 + $rlen + 1, 1));
    my $s = substr($der, 4 + $rlen + 2, $slen);
    s/^\x00+// for $r, $s;
    return ("\x00" x (32 - length $r)) . $r . ("\x00" x (32 - length $s)) . $s;
}

# The signature of $input with key $k, as its JWS algorithm wants it.
sub sign_token {
    my ($k, $input) = @_;
    my $in = tmpdir() . "/jwt-in-$$-" . ++$N;
    write_file($in, $input);
    if ($k->{alg} eq 'EdDSA') {
        _openssl('pkeyutl', '-sign', '-inkey', $k->{pem}, '-rawin', '-in', $in, '-out', "$in.sig");
    } else {
        _openssl('dgst', '-sha256', '-sign', $k->{pem}, '-out', "$in.sig", $in);
    }
    my $sig = slurp("$in.sig");
    unlink $in, "$in.sig";
    return $k->{alg} eq 'ES256' ? _der_to_raw($sig) : $sig;
}

# token_for($k, \%claims, header => {...}): a compact JWS signed with $k (header: alg and kid of the key unless given)
sub token_for {
    my ($k, $claims, %o) = @_;
    my $header = $o{header} // { alg => $k->{alg}, typ => 'JWT', defined $k->{kid} ? (kid => $k->{kid}) : () };
    my $h = ref $header ? $JSON->encode($header) : $header;
    my $p = ref $claims ? $JSON->encode($claims) : $claims;
    my $input = b64u($h) . '.' . b64u($p);
    return "$input." . b64u(sign_token($k, $input));
}

1;
