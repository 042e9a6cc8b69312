import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class FieldErrorDto {
  @ApiProperty({ example: 'email', description: 'Dotted path of the offending field' })
  field!: string;

  @ApiProperty({ example: 'email must be an email' })
  message!: string;

  @ApiPropertyOptional({ example: 'isEmail' })
  code?: string;
}

/** The body of every error response of the REST API. */
export class ErrorBodyDto {
  @ApiProperty({ example: 'email: email must be an email', description: 'Human-readable explanation, always a string' })
  detail!: string;

  @ApiProperty({ example: 'validation_failed', description: 'Stable machine-readable code' })
  code!: string;

  @ApiPropertyOptional({ type: [FieldErrorDto], description: 'One entry per invalid field (validation errors only)' })
  errors?: FieldErrorDto[];

  @ApiProperty({ example: '/api/v1/auth/register' })
  path!: string;

  @ApiProperty({ example: '2026-11-27T10:00:00.000Z' })
  timestamp!: string;

  @ApiProperty({ example: '6f1c2a0e-6c1b-4a8f-9d7e-0b8c7d9e1f20', description: 'Echoes X-Request-Id' })
  request_id!: string;
}
