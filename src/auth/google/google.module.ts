import { Module } from '@nestjs/common';
import {
  GoogleAuthLibraryVerifier,
  GoogleCertificateSource,
  GoogleFederatedCertificates,
  GoogleIdTokenVerifier,
} from './google-id-token.verifier.js';

/**
 * Google Sign-In: verifies ID tokens against Google's published certificates. Needs the auth
 * configuration namespace (global, from configModule()). Tests replace the certificates:
 * `builder.overrideProvider(GoogleCertificateSource).useValue(new LocalGoogleCertificates())`.
 */
@Module({
  providers: [
    { provide: GoogleCertificateSource, useClass: GoogleFederatedCertificates },
    { provide: GoogleIdTokenVerifier, useClass: GoogleAuthLibraryVerifier },
  ],
  exports: [GoogleCertificateSource, GoogleIdTokenVerifier],
})
export class GoogleModule {}
