import { HttpStatus } from '@nestjs/common';
import { defineErrorCodes } from '../common/errors/error-code.js';

/** What a runtime refuses (these reach clients only through the routes that run commands). */
export const RuntimeError = defineErrorCodes('runtime', {
  InvalidEnvironmentId: ['invalid_environment_id', HttpStatus.BAD_REQUEST],
  InvalidVariableName: ['invalid_variable_name', HttpStatus.BAD_REQUEST],
  EmptyCommand: ['empty_command', HttpStatus.BAD_REQUEST],
  CommandNotFound: ['command_not_found', HttpStatus.BAD_REQUEST],
  NotProvisioned: ['environment_not_provisioned', HttpStatus.NOT_FOUND],
  NotRunning: ['environment_not_running', HttpStatus.CONFLICT],
  CommandFailedToStart: ['command_failed_to_start', HttpStatus.INTERNAL_SERVER_ERROR],
  InvalidWorkingDirectory: ['invalid_working_directory', HttpStatus.BAD_REQUEST],
  TemplateNotAllowed: ['template_not_allowed', HttpStatus.CONFLICT],
});
