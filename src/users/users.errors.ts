import { HttpStatus } from '@nestjs/common';
import { defineErrorCodes } from '../common/errors/error-code.js';

/** Refusals of the users and admin APIs. */
export const UserError = defineErrorCodes('users', {
  NotFound: ['user_not_found', HttpStatus.NOT_FOUND],
  OwnAdminRights: ['own_admin_rights', HttpStatus.CONFLICT],
});
