import { ApiProperty } from '@nestjs/swagger';

/** The answer of calls that have nothing else to return, e.g. `{ "message": "Signed out" }`. */
export class MessageResponseDto {
  @ApiProperty({ example: 'Done' })
  message!: string;
}
