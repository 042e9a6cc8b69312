import { ApiProperty } from '@nestjs/swagger';
import { Text } from '../../common/dto/fields.js';

export class GoogleWebExchangeDto {
  @Text({ description: 'The one-time code from the fragment of the callback redirect (`#google_code=…`)', maxLength: 64 })
  code!: string;
}

export class GoogleWebStatusDto {
  @ApiProperty({ description: 'Whether "Sign in with Google" is offered (GOOGLE_WEB_CLIENT_ID and _SECRET are set)' })
  enabled!: boolean;
}
